"""Kubernetes adapters shared by the agent, the hub controllers and the provisioner.

Raw JSON in and out (every kind is a plain dict), asyncio-native over aiohttp, kubeconfig and
in-cluster credentials read through the ``kubernetes`` package's loaders.
"""
