"""``fleetplane bench fleet``: the hub controllers end to end at fleet scale.

Starts, in a temporary environment: etcd and a hub kube-apiserver (Argo CD's CRDs, no Argo CD),
PostgreSQL, Kafka, the Maestro server (its own process), N Maestro consumers with N Argo CD
cluster Secrets on the hub, N simulated agents (the real agent code over in-memory appliers that
answer as a worker's Argo CD would: Synced/Healthy after ``argocd_sync_delay``), and the hub
controllers (``fleetplane controllers run``, its own process). Then it applies M opted-in
ApplicationSets, each with a ``clusters`` generator selecting all N clusters, and measures:

- create: until all N*M hub Applications are Synced/Healthy;
- update: a ``targetRevision`` change in all M ApplicationSets until every simulated agent has
  applied it and every hub Application reports Synced/Healthy at a revision other than its previous
  one (the simulated Argo CD derives the revision from the Application's spec);
- delete: all M ApplicationSets until no work and no hub Application remains;
- hub API writes/s (``apiserver_request_total`` of create/update/patch/delete/apply) and the peak
  RSS (VmHWM) of every process.

Every wait is bounded; a phase that times out is reported with what it reached, and the run goes on.

``workload``: what is applied; ``hub``: the hub API server and its client; ``sampler``: what the
run counts as it goes; ``report``: the figures and the timeline made of them; ``harness``: the run.
"""
