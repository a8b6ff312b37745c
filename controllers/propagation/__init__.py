"""ApplicationSet -> per-cluster Argo CD Application -> Maestro ManifestBundle, as pure functions.

Called by the propagation controller's kopf handlers, in this order: ``generators.generate``
(parameter sets), ``plan.plan_application_set`` (desired works and hub mirrors),
``diff.diff`` (what to create/update/delete in Maestro), ``rollout.plan_rollout`` (which of those
changes may go out now).
"""
