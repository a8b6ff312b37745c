"""Compositions and their revisions: which one a composite uses, and at which revision.

Editing a Composition never rewrites every cluster at once. The operator calls
:func:`next_revision` whenever a Composition (or its template file) changes and creates what it
returns: a frozen copy of the template and defaults, numbered one above the latest. Each composite
then finds its Composition with :func:`select_composition` and its revision with
:func:`resolve_revision`: composites under the ``Automatic`` update policy follow the latest
revision, those under ``Manual`` stay on the revision they are pinned to until someone moves them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from provisioner import api

LABEL_COMPOSITION_HASH = f"{api.GROUP}/composition-hash"


class CompositionError(Exception):
    """No Composition or revision can be used: ``field`` names the field at fault, ``fix`` the way out."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(f"{field}: {message} — {fix}")
        self.field = field
        self.message = message
        self.fix = fix


def template_source(composition: Mapping[str, Any]) -> str:
    """Where a Composition's template comes from, as render errors name it."""
    template = (composition.get("spec") or {}).get("template") or {}
    if template.get("path"):
        return f"compositions/{template['path']}"
    return f"Composition/{(composition.get('metadata') or {}).get('name', '')}"


def template_hash(
    composition: Mapping[str, Any], template_text: str, pipeline: list[dict[str, Any]] | None = None
) -> str:
    """The sha256 (hex) of what a revision freezes: the composite type, the template text (or the
    pipeline, its templates inline) and the defaults."""
    spec = composition.get("spec") or {}
    content: dict[str, Any] = {
        "compositeTypeRef": spec.get("compositeTypeRef") or {},
        "template": template_text,
        "defaults": spec.get("defaults") or {},
    }
    if pipeline is not None:
        content["pipeline"] = pipeline
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def revisions_of(composition_name: str, revisions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Composition's revisions, oldest first."""
    own = [dict(r) for r in revisions if (r.get("spec") or {}).get("compositionName") == composition_name]
    return sorted(own, key=_number)


def next_revision(
    composition: Mapping[str, Any],
    template_text: str,
    revisions: Iterable[Mapping[str, Any]],
    pipeline: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The CompositionRevision to create (or update) for the Composition as it is now, or ``None``
    when its latest revision already holds this template and these defaults.

    A new revision is named ``<composition>-<hash[:7]>`` and numbered one above the latest. When an
    older revision already holds this content (the Composition was rolled back), that revision is
    returned renumbered as the latest, as Crossplane does: apply it as an update of that object.
    A Pipeline Composition's revision holds ``pipeline`` (as ``pipeline.freeze`` returns it) instead
    of a template.
    """
    metadata = composition.get("metadata") or {}
    name = str(metadata.get("name", ""))
    own = revisions_of(name, revisions)
    digest = template_hash(composition, template_text, pipeline)
    if own and (own[-1].get("spec") or {}).get("hash") == digest:
        return None
    number = (_number(own[-1]) if own else 0) + 1
    same = [r for r in own if (r.get("spec") or {}).get("hash") == digest]
    revision_name = str(same[-1]["metadata"]["name"]) if same else f"{name}-{digest[:7]}"
    spec = composition.get("spec") or {}
    obj: dict[str, Any] = {
        "apiVersion": api.API_VERSION,
        "kind": api.REVISION_KIND,
        "metadata": {
            "name": revision_name,
            "labels": {api.LABEL_COMPOSITION_NAME: name, LABEL_COMPOSITION_HASH: digest[:63]},
        },
        "spec": {
            "revision": number,
            "compositionName": name,
            "compositeTypeRef": dict(spec.get("compositeTypeRef") or {}),
            "defaults": json.loads(json.dumps(spec.get("defaults") or {})),
            "hash": digest,
        },
    }
    if pipeline is None:
        obj["spec"]["template"] = {"inline": template_text, "source": template_source(composition)}
    else:
        obj["spec"]["mode"] = "Pipeline"
        obj["spec"]["pipeline"] = json.loads(json.dumps(pipeline))
    if metadata.get("uid"):
        # Deleting the Composition deletes its revisions (composites on them keep rendering from
        # their last applied state until they are moved or deleted).
        obj["metadata"]["ownerReferences"] = [
            {
                "apiVersion": api.API_VERSION,
                "kind": api.COMPOSITION_KIND,
                "name": name,
                "uid": metadata["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return obj


def serves(composition: Mapping[str, Any], composite: Mapping[str, Any]) -> bool:
    """Whether the Composition's ``compositeTypeRef`` is the composite's apiVersion and kind."""
    ref = (composition.get("spec") or {}).get("compositeTypeRef") or {}
    return ref.get("apiVersion") == composite.get("apiVersion") and ref.get("kind") == composite.get("kind")


def select_composition(
    composite: Mapping[str, Any], compositions: Iterable[Mapping[str, Any]], default_name: str
) -> dict[str, Any]:
    """The Composition a composite uses: the one ``spec.compositionRef`` names, else the first (by
    name) whose labels match ``spec.compositionSelector.matchLabels``, else the definition's default
    (``default_name``). It must serve the composite's kind."""
    spec = composite.get("spec") or {}
    kind = f"{composite.get('kind')} ({composite.get('apiVersion')})"
    by_name = {str((c.get("metadata") or {}).get("name", "")): dict(c) for c in compositions}
    serving = sorted(n for n, c in by_name.items() if serves(c, composite))
    choices = ", ".join(serving) or "none exists yet"

    ref = (spec.get("compositionRef") or {}).get("name")
    if ref:
        return _named(by_name, ref, composite, "spec.compositionRef.name", f"name one for {kind}: {choices}")

    selector = (spec.get("compositionSelector") or {}).get("matchLabels") or {}
    if selector:
        for name in serving:
            labels = (by_name[name].get("metadata") or {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                return by_name[name]
        wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        raise CompositionError(
            "spec.compositionSelector.matchLabels",
            f"{wanted} matches no Composition for {kind}",
            f"label a Composition with {wanted}, or change the selector "
            f"(Compositions for this kind: {choices})",
        )

    if default_name:
        return _named(
            by_name,
            default_name,
            composite,
            "spec.compositionRef.name",
            f"create the definition's default Composition {default_name!r}, or set spec.compositionRef.name "
            f"(Compositions for {kind}: {choices})",
        )
    raise CompositionError(
        "spec.compositionRef.name",
        "is not set, there is no compositionSelector, and the definition names no default Composition",
        f"set spec.compositionRef.name (Compositions for {kind}: {choices}) or the definition's "
        "spec.defaultCompositionRef.name",
    )


def resolve_revision(composite: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The revision the composite renders from.

    ``revisions`` are the selected Composition's (those of other Compositions are ignored once
    ``spec.compositionRef.name`` is set). Under ``Automatic`` it is the latest. Under ``Manual`` it
    is the one ``spec.compositionRevisionRef.name`` pins — the latest when nothing is pinned yet
    (the caller pins it, see :func:`binding_patch`) — and it never moves on its own.
    """
    spec = composite.get("spec") or {}
    composition = (spec.get("compositionRef") or {}).get("name") or ""
    own = revisions_of(composition, revisions) if composition else sorted(map(dict, revisions), key=_number)
    if not own:
        raise CompositionError(
            "spec.compositionRef.name",
            f"Composition {composition!r} has no revision yet",
            "wait for the provisioner to cut one (it does when it sees the Composition); if none appears, "
            "read the Composition's conditions",
        )
    policy = spec.get("compositionUpdatePolicy") or "Automatic"
    if policy not in api.UPDATE_POLICIES:
        raise CompositionError(
            "spec.compositionUpdatePolicy", f"is {policy!r}", f"use one of {', '.join(api.UPDATE_POLICIES)}"
        )
    latest = own[-1]
    pinned = (spec.get("compositionRevisionRef") or {}).get("name")
    if policy == "Automatic" or not pinned:
        return latest
    for revision in own:
        if revision["metadata"]["name"] == pinned:
            return revision
    existing = ", ".join(str(r["metadata"]["name"]) for r in own)
    raise CompositionError(
        "spec.compositionRevisionRef.name",
        f"pins revision {pinned!r}, which does not exist (revisions of {composition or 'the Composition'}: "
        f"{existing})",
        f"pin an existing one, e.g. the latest: {_patch_command(composite, str(latest['metadata']['name']))}",
    )


def binding_patch(
    composite: Mapping[str, Any], composition: Mapping[str, Any], revision: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch that records the composite's Composition and revision in its spec, or ``{}``
    when both are already recorded. Under ``Manual`` a pinned revision is never replaced."""
    spec = composite.get("spec") or {}
    out: dict[str, Any] = {}
    composition_name = (composition.get("metadata") or {}).get("name")
    if (spec.get("compositionRef") or {}).get("name") != composition_name:
        out["compositionRef"] = {"name": composition_name}
    revision_name = (revision.get("metadata") or {}).get("name")
    pinned = (spec.get("compositionRevisionRef") or {}).get("name")
    manual = (spec.get("compositionUpdatePolicy") or "Automatic") == "Manual"
    if pinned != revision_name and not (manual and pinned):
        out["compositionRevisionRef"] = {"name": revision_name}
    return {"spec": out} if out else {}


def prunable_revisions(
    composition: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]], in_use: Collection[str]
) -> list[dict[str, Any]]:
    """Revisions beyond the Composition's ``revisionHistoryLimit`` that no composite renders from
    (``in_use`` holds the names of the revisions composites are on). The latest is always kept."""
    name = str((composition.get("metadata") or {}).get("name", ""))
    limit = int(
        (composition.get("spec") or {}).get("revisionHistoryLimit") or api.DEFAULT_REVISION_HISTORY_LIMIT
    )
    own = revisions_of(name, revisions)
    old = own[: max(len(own) - max(limit, 1), 0)]
    return [r for r in old if r["metadata"]["name"] not in in_use]


def _named(
    by_name: Mapping[str, dict[str, Any]], name: str, composite: Mapping[str, Any], field: str, fix: str
) -> dict[str, Any]:
    composition = by_name.get(name)
    if composition is None:
        raise CompositionError(field, f"Composition {name!r} does not exist", fix)
    if not serves(composition, composite):
        ref = (composition.get("spec") or {}).get("compositeTypeRef") or {}
        raise CompositionError(
            field,
            f"Composition {name!r} serves {ref.get('kind')} ({ref.get('apiVersion')}), "
            f"not {composite.get('kind')} ({composite.get('apiVersion')})",
            fix,
        )
    return composition


def _number(revision: Mapping[str, Any]) -> int:
    return int((revision.get("spec") or {}).get("revision") or 0)


def _patch_command(composite: Mapping[str, Any], revision: str) -> str:
    patch = json.dumps({"spec": {"compositionRevisionRef": {"name": revision}}}, separators=(",", ":"))
    claim = (composite.get("spec") or {}).get("claimRef") or {}
    if claim.get("name"):
        # Teams own the claim, and the claim's spec is copied onto the composite: patch it there.
        target = f"{str(claim.get('kind', '')).lower()} {claim['name']} -n {claim.get('namespace')}"
    else:
        target = f"{str(composite.get('kind', '')).lower()} {(composite.get('metadata') or {}).get('name')}"
    return f"kubectl patch {target} --type merge -p '{patch}'"
