"""Cluster providers: where a worker cluster's control plane comes from (``local`` or ``aws``)."""
