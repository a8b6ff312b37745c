"""The Application Propagation controller: ApplicationSet -> per-cluster Argo CD Application ->
Maestro ManifestBundle.

The pure pipeline, in the order a pass runs it: ``generators.generate`` (parameter sets),
``plan.plan_application_set`` (desired works and hub mirrors: ``targets`` checks each rendered
Application, ``documents`` builds what is written, ``identities`` names it), ``diff.diff`` (what to
create/update/delete in Maestro), ``rollout.plan_rollout`` (which of those changes may go out now).

The I/O side: ``controller`` (daemons, passes, finalizer), ``convergence`` (a pass after planning),
``works_and_mirrors`` (Maestro and hub reads and writes), ``sweep`` (orphaned works), and
``handlers`` (the kopf wiring).
"""
