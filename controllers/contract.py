"""Names shared by the propagation and status controllers (and read by people with kubectl).

The propagation plan writes these labels, annotations and status-feedback rules into the objects
it creates; the status aggregation reads them back from Maestro's bundle status. Keeping them in
one module is what keeps the two sides in agreement.
"""

from __future__ import annotations

from typing import Final

# --- opt-in ---------------------------------------------------------------------------------------

#: An ApplicationSet is served by fleetplane's pull pipeline only when it carries this label with
#: the value ``"true"``; every other ApplicationSet is left to Argo CD's own controller.
PULL_LABEL: Final = "fleetplane.io/pull"
PULL_LABEL_VALUE: Final = "true"

# --- Maestro ------------------------------------------------------------------------------------------

#: The CloudEvents source the propagation controller publishes works as and the status controller
#: follows. It is part of every work id (``identities.work_id``): changing it orphans every existing work.
MAESTRO_SOURCE: Final = "fleetplane"

# --- labels and annotations that tie objects back to their ApplicationSet and cluster ---------------

LABEL_APPSET_NAMESPACE: Final = "fleetplane.io/appset-namespace"
LABEL_APPSET_NAME: Final = "fleetplane.io/appset-name"
LABEL_CLUSTER: Final = "fleetplane.io/cluster"

#: Label values are limited to 63 characters; these annotations always carry the full values.
ANNOTATION_APPSET: Final = "fleetplane.io/applicationset"  # "<namespace>/<name>"
ANNOTATION_CLUSTER: Final = "fleetplane.io/cluster"
ANNOTATION_HUB_APPLICATION: Final = "fleetplane.io/hub-application"  # "<namespace>/<name>"
ANNOTATION_WORK_NAME: Final = "fleetplane.io/work-name"
ANNOTATION_SPEC_HASH: Final = "fleetplane.io/spec-hash"
#: On a work under RollingSync: the sync operation its Application carries (the time its rollout
#: asked for it), so that a pass tells an operation-only change from a changed Application.
ANNOTATION_ROLLOUT_SYNC: Final = "fleetplane.io/rollout-sync"
#: On a hub mirror: the hash of what the propagation controller last applied, so an unchanged
#: mirror costs no write on the next pass.
ANNOTATION_MIRROR_HASH: Final = "fleetplane.io/mirror-hash"

#: Hub mirrors carry this so that an Argo CD running on the hub leaves them alone.
ARGOCD_SKIP_RECONCILE: Final = "argocd.argoproj.io/skip-reconcile"
#: what argocd-server sets on an Application to ask for a refresh, and waits to see removed
ANNOTATION_REFRESH: Final = "argocd.argoproj.io/refresh"
#: what argocd-server sets with it (when it asked, and a hydration request), taken off with it
REFRESH_ANNOTATIONS: Final = (
    ANNOTATION_REFRESH,
    "argocd.argoproj.io/refresh-timestamp",
    "argocd.argoproj.io/hydrate",
    "argocd.argoproj.io/hydrate-timestamp",
)

#: Argo CD deletes an Application's resources only while the Application carries this finalizer
#: (or one of its ``/foreground`` / ``/background`` variants).
RESOURCES_FINALIZER: Final = "resources-finalizer.argocd.argoproj.io"

# --- status feedback: what the agent reads off the worker Application and sends back ---------------

FEEDBACK_SYNC_STATUS: Final = "syncStatus"
FEEDBACK_SYNC_REVISION: Final = "syncRevision"
FEEDBACK_SYNC_REVISIONS: Final = "syncRevisions"
FEEDBACK_HEALTH_STATUS: Final = "healthStatus"
FEEDBACK_CONDITIONS: Final = "conditions"
FEEDBACK_OPERATION: Final = "operation"
FEEDBACK_OPERATION_PHASE: Final = "operationPhase"
FEEDBACK_OPERATION_MESSAGE: Final = "operationMessage"
FEEDBACK_OPERATION_STARTED_AT: Final = "operationStartedAt"
FEEDBACK_OPERATION_FINISHED_AT: Final = "operationFinishedAt"
FEEDBACK_RESOURCES: Final = "resources"
FEEDBACK_SUMMARY: Final = "summary"
FEEDBACK_RECONCILED_AT: Final = "reconciledAt"

#: (name, JSONPath) pairs, in the order the bundle's ``feedbackRules`` list them. Paths use the
#: Open Cluster Management JSONPaths form (no braces). ``operation`` is fed back because Argo CD's
#: CRD requires ``operationState.operation`` whenever ``operationState`` is written.
FEEDBACK_PATHS: Final[tuple[tuple[str, str], ...]] = (
    (FEEDBACK_SYNC_STATUS, ".status.sync.status"),
    (FEEDBACK_SYNC_REVISION, ".status.sync.revision"),
    (FEEDBACK_SYNC_REVISIONS, ".status.sync.revisions"),
    (FEEDBACK_HEALTH_STATUS, ".status.health.status"),
    (FEEDBACK_CONDITIONS, ".status.conditions"),
    (FEEDBACK_OPERATION, ".status.operationState.operation"),
    (FEEDBACK_OPERATION_PHASE, ".status.operationState.phase"),
    (FEEDBACK_OPERATION_MESSAGE, ".status.operationState.message"),
    (FEEDBACK_OPERATION_STARTED_AT, ".status.operationState.startedAt"),
    (FEEDBACK_OPERATION_FINISHED_AT, ".status.operationState.finishedAt"),
    (FEEDBACK_RESOURCES, ".status.resources"),
    (FEEDBACK_SUMMARY, ".status.summary"),
    (FEEDBACK_RECONCILED_AT, ".status.reconciledAt"),
)
