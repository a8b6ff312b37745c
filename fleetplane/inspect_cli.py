"""``fleetplane trace`` and ``fleetplane diff``: what a claim became, and what applying one would change."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from fleetplane import kube_options, output, tls_options
from kubeio import objects
from kubeio.errors import KubeError
from kubeio.kubeconfig import Kubeconfig
from kubeio.rest import APPLY_PATCH
from maestro import client_errors
from maestro.api import queries
from maestro.client import Credentials, MaestroClient
from provisioner import api, reconciler, trace, xrd

err = Console(stderr=True)
KUBECONFIG = kube_options.kubeconfig_option("the management cluster")
# Fields the API server writes itself: noise in a diff.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trace_command(
    ref: str = typer.Argument(..., help="KIND/NAME, e.g. clusterclaim/my-cluster or workercluster/x-1a2b3."),
    namespace: str = typer.Option(
        "default", "-n", "--namespace", help="The claim's (or the namespaced composite's) namespace."
    ),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
    maestro: str = typer.Option(
        "",
        "--maestro",
        envvar="MAESTRO_SERVER",
        help="The Maestro server's gRPC address, to show the cluster's works too.",
    ),
    tls_dir: str = tls_options.TLS_DIR,
    token_file: str = tls_options.TOKEN_FILE,
    insecure: bool = tls_options.INSECURE,
    out: output.Format = output.OUTPUT,
) -> None:
    """Print claim -> composite -> composed resources -> cluster -> agent -> apps, each with its state.

    The table is the tree with every state and message (wide is the same); yaml and json print the
    tree as nodes of label, state, message, ok and children."""
    kind, sep, name = ref.partition("/")
    if not sep or not name:
        err.print(f"[red]error:[/red] {ref!r} is not KIND/NAME (e.g. clusterclaim/my-cluster)")
        raise typer.Exit(2)
    credentials = tls_options.credentials(tls_dir, token_file, insecure) if maestro else None
    config = kube_options.load(kubeconfig, context)
    try:
        tree = asyncio.run(_trace(kind, name, namespace, config, maestro, credentials))
    except (KubeError, LookupError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    output.show_data(dataclasses.asdict(tree), out, lambda _wide: "\n".join(trace.lines(tree)))


async def _trace(
    kind: str,
    name: str,
    namespace: str,
    config: Kubeconfig,
    maestro: str,
    credentials: Credentials | None,
) -> trace.Node:
    rest = kube_options.rest(config)
    hub = objects.Objects(rest)
    try:
        definitions = (
            await rest.request("GET", f"/apis/{api.GROUP}/{api.VERSION}/compositeresourcedefinitions")
        )["items"]
        definition, is_claim = _definition_for(definitions, kind)
        group, version, _ = reconciler.kind_path(definition, claim=is_claim)
        names = definition["spec"]["claimNames" if is_claim else "names"]
        namespaced = is_claim or xrd.scope(definition) == api.NAMESPACED
        meta = {"name": name, "namespace": namespace} if namespaced else {"name": name}
        found = await hub.get({"apiVersion": f"{group}/{version}", "kind": names["kind"], "metadata": meta})
        if found is None:
            raise LookupError(f"{names['kind']} {namespace + '/' if namespaced else ''}{name} not found")
        claim, composite = (found, None) if is_claim else (None, found)
        if claim is not None:
            ref = (claim.get("spec") or {}).get("resourceRef") or {}
            if ref.get("name"):
                composite = await hub.get({**ref, "metadata": {"name": ref["name"]}})
        cluster = xrd.cluster_name(composite) if composite else ""
        apps: list[dict[str, Any]] = []
        if cluster:
            reply = await rest.request(
                "GET",
                "/apis/argoproj.io/v1alpha1/applications",
                query=[("labelSelector", f"fleetplane.io/cluster={cluster}")],
            )
            apps = reply.get("items") or []
        works = await _works(maestro, credentials, cluster) if credentials and cluster else []
        return trace.build(claim, composite, works, apps)
    finally:
        await rest.close()


def _definition_for(definitions: list[dict[str, Any]], kind: str) -> tuple[dict[str, Any], bool]:
    wanted = kind.lower()
    for definition in definitions:
        spec = definition.get("spec") or {}
        for key, is_claim in (("claimNames", True), ("names", False)):
            names = spec.get(key) or {}
            aliases = {str(names.get("kind", "")).lower(), str(names.get("plural", "")).lower()}
            aliases |= {str(s).lower() for s in names.get("shortNames") or []}
            if wanted in aliases:
                return definition, is_claim
    known = sorted(
        str(((d.get("spec") or {}).get(key) or {}).get("kind"))
        for d in definitions
        for key in ("names", "claimNames")
        if ((d.get("spec") or {}).get(key) or {}).get("kind")
    )
    raise LookupError(f"no definition serves kind {kind!r} (kinds: {', '.join(known) or 'none'})")


async def _works(address: str, credentials: Credentials, cluster: str) -> list[dict[str, Any]]:
    # Every source's works of the cluster: an admin's read (a source's certificate sees its own).
    async with MaestroClient(address, source="fleetplane-trace", credentials=credentials) as client:
        try:
            records, _ = await client.list(queries.ResourceFilter(consumer=cluster))
        except client_errors.MaestroCallError as exc:
            return [{"name": "(Maestro)", "applied": False, "message": str(exc)}]
    out = []
    for record in records:
        status = record.status.conditions if record.status is not None else []
        applied = next((c for c in status if c.get("type") == "Applied"), {})
        out.append(
            {
                "name": record.bundle.metadata.get("name") or str(record.bundle.id),
                "applied": applied.get("status") == "True",
                "message": applied.get("message") or ("deleting" if record.bundle.deleting else ""),
            }
        )
    return out


def diff_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A claim (or any objects) YAML file."),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
) -> None:
    """Show what applying FILE would change on the live management cluster (a server-side dry run).
    A Secret's values are never printed: its keys are, with changed values marked."""
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    except yaml.YAMLError as exc:
        err.print(f"[red]error:[/red] {file}: {exc}")
        raise typer.Exit(1) from None
    try:
        changed = asyncio.run(_diff(docs, kube_options.load(kubeconfig, context)))
    except KubeError as exc:
        err.print(f"[red]error:[/red] the API server refused it: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(1 if changed else 0)


async def _diff(docs: list[dict[str, Any]], config: Kubeconfig) -> bool:
    rest = kube_options.rest(config)
    hub = objects.Objects(rest)
    changed = False
    try:
        for obj in docs:
            live = await hub.get(obj)
            path = await hub.path(obj)
            query = [("fieldManager", reconciler.FIELD_MANAGER), ("dryRun", "All"), ("force", "true")]
            after = await rest.request("PATCH", path, query=query, body=obj, content_type=APPLY_PATCH)
            before_text, after_text = (_text(o) for o in mask_secret_values(live, after))
            label = objects.describe(obj)
            if before_text == after_text:
                typer.echo(f"{label}: no changes")
                continue
            changed = True
            typer.echo(
                "".join(
                    difflib.unified_diff(
                        before_text.splitlines(keepends=True),
                        after_text.splitlines(keepends=True),
                        f"live {label}" if live else "(absent)",
                        f"applied {label}",
                    )
                )
            )
    finally:
        await rest.close()
    return changed


def _is_secret(obj: dict[str, Any] | None) -> bool:
    return bool(obj) and (obj or {}).get("apiVersion") == "v1" and (obj or {}).get("kind") == "Secret"


def mask_secret_values(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copies of a Secret's two versions whose ``data``/``stringData`` values (and the last-applied
    annotation, which holds them in clear) are masked as ``kubectl diff`` masks them: keys stay,
    each value is ``***``, or ``*** (before)``/``*** (after)`` where it changed, so a diff still says
    which keys changed and never shows a value. Other kinds are returned as they are."""
    if not (_is_secret(before) or _is_secret(after)):
        return before, after
    old, new = copy.deepcopy(before), copy.deepcopy(after)
    for field in ("data", "stringData"):
        _mask(_child(old, field), _child(new, field))
    old_notes = _child(_child(old, "metadata"), "annotations")
    new_notes = _child(_child(new, "metadata"), "annotations")
    _mask(old_notes, new_notes, only=_LAST_APPLIED)
    return old, new


def _child(obj: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
    value = obj.get(field) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def _mask(old: dict[str, Any] | None, new: dict[str, Any] | None, only: str | None = None) -> None:
    """Mask the values of two versions of one map in place (all keys, or the key ``only``)."""
    keys = (set(old or {}) | set(new or {})) if only is None else {only}
    for key in keys:
        changed = old is not None and new is not None and key in old and key in new and old[key] != new[key]
        for side, label in ((old, "before"), (new, "after")):
            if side is not None and key in side:
                side[key] = f"*** ({label})" if changed else "***"


def _text(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    clean = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (clean.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("provisioner.fleetplane.io")
    }
    meta = (
        {**meta, "annotations": annotations}
        if annotations
        else {k: v for k, v in meta.items() if k != "annotations"}
    )
    return yaml.safe_dump({**clean, "metadata": meta}, sort_keys=True)
