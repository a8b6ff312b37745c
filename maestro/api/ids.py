"""Resource ids compatible with upstream's source clients.

Used by fleetplane's own source clients (the propagation controller) so that a ManifestWork gets
the same id whether an upstream client or ours sends it, and by tests.
"""

from __future__ import annotations

import uuid

MANIFESTWORK_GROUP_RESOURCE = "manifestworks.work.open-cluster-management.io"


def work_resource_id(source: str, namespace: str, name: str) -> uuid.UUID:
    """UUIDv5 (OID namespace) of "<source>-<group resource>-<namespace>-<name>", as upstream makes it."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"{source}-{MANIFESTWORK_GROUP_RESOURCE}-{namespace}-{name}")
