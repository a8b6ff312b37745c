"""The Maestro agent's cluster-facing layer: apply bundles, keep applied records, report status.

The agent's Kafka loop (`maestro.agent` wiring, written elsewhere) receives ManifestBundles and calls
an `applier.Applier` — `kube.KubeApplier` on a real cluster, `memory.MemoryApplier` for simulated
agents in benchmarks — then builds the status with `status` and `feedback` and publishes it when
`status.status_hash` changed.

Modules, lowest first: `errors`, `jsonpath`, `manifests` (pure parsing) -> `feedback`, `records`,
`applier` (types and the protocol) -> `status` (pure) -> `engine` (the algorithm over a backend)
-> `discovery` -> `kube` and `memory` (the two backends); HTTP to the API server is `kubeio.rest`.
"""
