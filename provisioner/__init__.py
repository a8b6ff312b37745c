"""Crossplane-style provisioning: definitions, compositions, claims and their cluster providers."""
