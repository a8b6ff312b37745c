"""The provisioner end to end: each module on its own ``fleetplane provisioner run`` and Maestro.

``test_claims``: a claim's whole journey (a working cluster, then deleted in order), refusals, the
Manual update policy and Orphan; ``test_agent_gone``: a deletion whose agent is gone (a Maestro
with a short deletion grace); ``test_namespaced``: a namespaced composite through a function
pipeline; ``test_aws``: the aws provider against moto.
"""
