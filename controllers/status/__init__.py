"""Maestro bundle status -> hub Application status and ApplicationSet rollup, as pure functions.

Called by the status aggregation controller (``controller``): ``aggregate.application_status``
per work status event, ``rollup.application_set_status`` per ApplicationSet, and
``batching.WriteBatcher`` to decide which of those patches to write to the hub API server, and when.
"""
