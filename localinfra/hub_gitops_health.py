"""How Argo CD judges the health of the platform's own objects: Lua health checks for ``argocd-cm``.

Argo CD has no health check for a custom resource it does not know, so without these a claim counts
as healthy the moment it is stored, and a management Application syncing claims would say Healthy
while its clusters are still being made, or could not be. The platform's objects (definitions,
Compositions, claims and their composites) carry Crossplane-style conditions, which one script
reads the same way for every kind:

- no conditions yet, or conditions about an older generation: ``Progressing`` (an object being
  deleted is ``Progressing``, "Pending deletion", by Argo CD itself before any script runs);
- ``Synced=False`` (the provisioner refused or failed it, e.g. a reserved inventory label or a
  template error): ``Degraded`` with its message;
- ``Ready=False`` while ``Creating`` or ``Deleting``, or ``Ready=Unknown``: ``Progressing``;
  ``Ready=False`` for any other reason (``Unavailable``: the cluster stopped answering):
  ``Degraded``;
- ``Ready=True``, or ``Synced=True`` on a kind that has no ``Ready`` (a Composition): ``Healthy``.

The keys are ``resource.customizations.health.<group>_<kind>``, one per kind.
"""

from __future__ import annotations

#: (API group, kind) of the platform's objects the script judges
KINDS = (
    ("fleetplane.io", "CompositeResourceDefinition"),
    ("fleetplane.io", "Composition"),
    ("platform.fleetplane.io", "ClusterClaim"),
    ("platform.fleetplane.io", "WorkerCluster"),
)

CONDITIONS_HEALTH = """\
local hs = {status = "Progressing", message = "waiting for the provisioner"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local found = {}
for _, c in ipairs(obj.status.conditions) do
  found[c.type] = c
end
local function said(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason or c.type
end
local synced, ready = found["Synced"], found["Ready"]
local generation = obj.metadata.generation
for _, c in pairs({synced, ready}) do
  if c ~= nil and c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration < generation then
    hs.message = "the provisioner has not seen generation " .. generation .. " yet"
    return hs
  end
end
if synced ~= nil and synced.status == "False" then
  return {status = "Degraded", message = said(synced)}
end
if ready ~= nil then
  if ready.status == "True" then
    return {status = "Healthy", message = said(ready)}
  end
  if ready.status == "False" and ready.reason ~= "Creating" and ready.reason ~= "Deleting" then
    return {status = "Degraded", message = said(ready)}
  end
  hs.message = said(ready)
  return hs
end
if synced ~= nil and synced.status == "True" then
  return {status = "Healthy", message = said(synced)}
end
return hs
"""


def key(group: str, kind: str) -> str:
    return f"resource.customizations.health.{group}_{kind}"


def argocd_cm_data() -> dict[str, str]:
    """The ``argocd-cm`` entries that give each of the platform's kinds its health check."""
    return {key(group, kind): CONDITIONS_HEALTH for group, kind in KINDS}
