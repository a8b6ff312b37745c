"""Hub controllers: Application Propagation and Status Aggregation.

``propagation`` turns an ApplicationSet into per-cluster Maestro works and hub mirrors, ``status``
turns Maestro status back into hub ``Application`` and ``ApplicationSet`` status. Each keeps its
domain logic pure; the modules that touch the network (the hub adapter ``hub``, the controllers and
their kopf wiring, ``operator``) are listed in the purity test, and reach Maestro only through
``maestro.client``.
"""
