"""``fleetplane render``: a claim through its composition, offline, printed as the resources it makes.

No cluster is needed: the definition and Composition come from files (by default the repository's
compositions/), the claim is checked against the definition's schema with its defaults applied as
the API server would, and the platform settings come from the options below.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
import yaml

from fleetplane import function_options, output
from fleetplane.output import Column
from localinfra import build, versions
from maestro.transport import layout
from provisioner import catalog, compositions, functions, pipeline, render, schema, xrd
from provisioner.functions import installed, wire

DEFAULT_DEFINITION = catalog.COMPOSITIONS_DIR / "worker-cluster" / "definition.yaml"

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# `crossplane render` prints YAML: so does render unless told otherwise.
_OUTPUT = output.output_option(output.Format.YAML)


class _Invalid(Exception):
    """The input is wrong; the message says where and what to do."""


def render_claim(
    claim_file: Path = typer.Argument(..., help="A claim (or composite) YAML file.", show_default=False),
    composition: Path | None = typer.Option(
        None,
        "--composition",
        help="A Composition file to render with, instead of the one the claim selects from compositions/. "
        "Its template.path is read from the folder above the file's folder.",
    ),
    definition: Path = typer.Option(
        DEFAULT_DEFINITION, "--definition", help="The CompositeResourceDefinition file of the claim's kind."
    ),
    maestro_grpc: str = typer.Option("127.0.0.1:8090", "--maestro-grpc", help="Maestro server gRPC address."),
    kafka: str = typer.Option("127.0.0.1:9092", "--kafka", help="Kafka bootstrap servers the agents read."),
    topic_prefix: str = typer.Option(
        layout.DEFAULT.prefix, "--topic-prefix", help="Maestro's Kafka topic prefix."
    ),
    hub_server: str = typer.Option(
        "https://127.0.0.1:6443", "--hub-server", help="The hub's API server URL."
    ),
    hub_name: str = typer.Option("hub", "--hub-name", help="The hub cluster's name."),
    inventory_namespace: str = typer.Option(
        "argocd", "--inventory-namespace", help="Hub namespace of the Argo CD cluster Secrets."
    ),
    argocd_install: Path | None = typer.Option(
        None,
        "--argocd-install",
        help="Argo CD's released install.yaml (default: the one `fleetplane local build` caches).",
    ),
    function_servers: list[str] = function_options.FUNCTIONS,
    function_tls_dir: Path | None = function_options.FUNCTION_TLS_DIR,
    out: output.Format = _OUTPUT,
) -> None:
    """Print the composed resources of a claim (or composite), in the order they are applied, without
    a cluster.

    Renders the Composition as it is now (not a revision a composite may be pinned to), through its
    whole pipeline: the template, the Python functions installed here and the function servers
    given with --function (they are called); each step's results go to stderr. The default
    output is the YAML stream to apply, each resource under a comment with its index, target and
    name; json prints them as a v1 List; table and wide list them one a line.
    """
    try:
        resources = _render(
            claim_file,
            composition,
            definition,
            argocd_install or build.argocd_manifests_dir() / "install.yaml",
            {
                "hub_name": hub_name,
                "hub_server": hub_server,
                "inventory_namespace": inventory_namespace,
                "maestro_grpc": maestro_grpc,
                "kafka": kafka,
                "topic_prefix": topic_prefix,
            },
            function_servers,
            function_tls_dir,
        )
    except (
        _Invalid,
        catalog.CatalogError,
        xrd.DefinitionError,
        compositions.CompositionError,
        render.RenderError,
        functions.FunctionError,
    ) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if out is output.Format.JSON:
        output.show([r.object for r in resources], _COLUMNS, out, kubernetes=True)
        return
    if out is not output.Format.YAML:
        output.show([_row(r) for r in resources], _COLUMNS, out)
        return
    for resource in resources:
        typer.echo(f"---\n# {resource.index} {resource.target} {resource.name}")
        if resource.wait_ready:
            typer.echo("# waitReady: the resources after this one wait until it is ready")
        typer.echo(
            yaml.dump(resource.object, Dumper=_Dumper, sort_keys=False, default_flow_style=False), nl=False
        )


_COLUMNS = (
    Column.key("index", "index"),
    Column.key("resource", "name"),
    Column.key("target", "target"),
    Column.key("kind", "kind"),
    Column.key("namespace", "namespace", wide=True),
    Column.key("object", "object"),
    Column.key("wait ready", "waitReady", wide=True),
)


def _row(resource: render.ComposedResource) -> dict[str, Any]:
    meta = resource.object.get("metadata") or {}
    return {
        "index": resource.index,
        "name": resource.name,
        "target": str(resource.target),
        "kind": resource.object.get("kind"),
        "namespace": meta.get("namespace"),
        "object": meta.get("name"),
        "waitReady": resource.wait_ready,
    }


def _render(
    claim_file: Path,
    composition_file: Path | None,
    definition_file: Path,
    install_file: Path,
    hub: dict[str, str],
    function_servers: list[str],
    function_tls: Path | None,
) -> list[render.ComposedResource]:
    obj = _one_object(claim_file)
    definition = _definition(definition_file, obj)
    obj = _checked(obj, definition, claim_file)
    claim = obj if xrd.is_claim(obj, definition) else None
    composite = xrd.composite_from_claim(obj, definition) if claim else obj
    composition, root = _composition(composite, definition, composition_file)
    steps = pipeline.frozen_steps(composition, root)
    if not install_file.is_file():
        raise _Invalid(
            f"Argo CD's install.yaml is not at {install_file} — run `fleetplane local build` to build "
            "and cache Argo CD, or pass --argocd-install FILE"
        )
    platform = render.platform_values(
        **hub, argocd_version=versions.ARGOCD, argocd_install=catalog.load_documents(install_file)
    )
    defaults = (composition.get("spec") or {}).get("defaults") or {}
    values = render.composite_values(composite, claim, defaults, platform)
    servers = wire.parse_servers(function_servers, wire.Tls(function_tls) if function_tls else None)
    found = installed.installed(servers)
    pipeline.check_installed(steps, found, composition.get("spec") or {})

    async def run() -> pipeline.Outcome:
        try:
            return await pipeline.run(steps, found, values=values, composite=composite, observed={})
        finally:
            for server in servers.values():
                await server.close()

    outcome = asyncio.run(run())
    for r in outcome.results:
        typer.echo(f"{r.result.severity}: step {r.step} ({r.function}): {r.result.message}", err=True)
    return outcome.resources


def _one_object(path: Path) -> dict[str, Any]:
    # A claim file often carries its namespace too (to be `kubectl apply`-ed as it is): objects of
    # Kubernetes' core group are never claims or composites, so they are passed over.
    docs = [d for d in catalog.load_documents(path) if "/" in str(d.get("apiVersion", "/"))]
    if len(docs) != 1:
        raise _Invalid(
            f"{path} holds {len(docs)} claims or composites — render one at a time (a file of its own)"
        )
    obj = docs[0]
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str):
            raise _Invalid(f"{path}: {key} is missing — a claim has apiVersion, kind, metadata and spec")
    if not (obj.get("metadata") or {}).get("name"):
        raise _Invalid(f"{path}: metadata.name is missing — name the claim")
    return obj


def _definition(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    found = xrd.find_definition(catalog.load_documents(path), obj["apiVersion"], obj["kind"])
    if found is None:
        raise _Invalid(
            f"no CompositeResourceDefinition in {path} defines {obj['kind']} in {obj['apiVersion']} — "
            "pass the definition of that kind with --definition FILE"
        )
    return found


def _checked(obj: dict[str, Any], definition: dict[str, Any], path: Path) -> dict[str, Any]:
    """The object with its schema's defaults applied, if it passes its schema; else every problem."""
    crds = xrd.generated_crds(definition)
    crd = crds[1] if xrd.is_claim(obj, definition) else crds[0]
    version = obj["apiVersion"].partition("/")[2]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        raise _Invalid(
            f"{path}: apiVersion {obj['apiVersion']!r} is not served — use version {', '.join(served)} "
            f"of {crd['spec']['group']}"
        )
    spec_schema = served[version]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec = schema.apply_defaults(obj.get("spec") or {}, spec_schema)
    problems = schema.validate(spec, spec_schema, "spec")
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise _Invalid(
            f"{obj['kind']} {obj['metadata']['name']!r} in {path} does not match its schema:\n{lines}"
        )
    metadata = dict(obj["metadata"])
    if crd["spec"]["scope"] == "Namespaced":
        # kubectl puts a claim (or namespaced composite) without a namespace in the context's
        # namespace; offline that is `default`.
        metadata.setdefault("namespace", "default")
    return {**obj, "metadata": metadata, "spec": spec}


def _composition(
    composite: dict[str, Any], definition: dict[str, Any], path: Path | None
) -> tuple[dict[str, Any], Path]:
    """The Composition to render with, and the folder its template.path is relative to."""
    default_name = str(((definition.get("spec") or {}).get("defaultCompositionRef") or {}).get("name") or "")
    if path is None:
        found = catalog.load_kind(catalog.COMPOSITIONS_DIR, "Composition")
        return compositions.select_composition(composite, found, default_name), catalog.COMPOSITIONS_DIR
    found = [d for d in catalog.load_documents(path) if d.get("kind") == "Composition"]
    if not found:
        raise _Invalid(f"{path} holds no Composition — pass a file with kind: Composition")
    if len(found) == 1:
        # The file names the Composition to use: the claim's own choice of one does not apply.
        spec = {
            k: v
            for k, v in (composite.get("spec") or {}).items()
            if k not in ("compositionRef", "compositionSelector")
        }
        composite = {**composite, "spec": spec}
        default_name = str(found[0]["metadata"]["name"])
    return compositions.select_composition(composite, found, default_name), path.resolve().parent.parent
