"""The Maestro agent's cluster-facing layer: apply bundles, keep applied records, report status.

The agent's loop (`agent_loop.Agent`) receives ManifestBundles and calls an `applier.Applier` —
`kube.KubeApplier` on a real cluster, `memory.MemoryApplier` for simulated agents in benchmarks —
then builds the status with `bundle_status` and `feedback` and publishes it when
`bundle_status.status_hash` changed; `service` runs it as a process over Kafka and a cluster.

Modules, lowest first: `errors`, `jsonpath`, `manifests` (pure parsing) -> `feedback`, `records`,
`applier` (types and the protocol), `executor` -> `bundle_status` (pure) -> `backend` (the cluster
operations), `plans` (manifests to write), `objects` (one object's writes and deletes) ->
`bundle_applier` (the rules over a backend) -> `kube` and `memory` (the two backends), `watcher`
-> `agent_loop` -> `service`; HTTP to the API server is `kubeio.rest`.
"""
