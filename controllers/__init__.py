"""Hub controllers: Application Propagation and Status Aggregation.

This package holds the pure domain logic only (no Kubernetes client, no gRPC, no I/O):
``propagation`` turns an ApplicationSet into per-cluster Maestro works, ``status`` turns Maestro
status back into hub ``Application`` status. The kopf handlers that feed them live beside them and
are the only callers that touch the network.
"""
