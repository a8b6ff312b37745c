"""The status hash: sha256 hex of a bundle status's JSON, as sources compare it when they resync.

Computed by storage when it stores a status and by the server when it answers a source's
`status.resync_request`. The JSON mirrors upstream's (the ManifestWork status object, keys sorted,
compact, `<>&` escaped as Go's encoding/json does) so an upstream source's hashes usually match
ours; when they do not, the only cost is that the status is sent again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from maestro.api import bundles

# Go's encoding/json escapes these even inside strings, where alone they can occur in JSON.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(value: Any) -> bytes:
    """Compact JSON with sorted keys and Go's escaping."""
    out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    for raw, escaped in _GO_ESCAPES:
        out = out.replace(raw, escaped)
    return out


def status_hash(status: bundles.BundleStatus) -> str:
    work_status: dict[str, Any] = {"resourceStatus": {}}
    if status.conditions:
        work_status["conditions"] = status.conditions
    if status.resource_status:
        work_status["resourceStatus"]["manifests"] = status.resource_status
    return hashlib.sha256(go_json(work_status)).hexdigest()
