"""The provisioner as a kopf operator on the management cluster: wiring, kopf settings, lifetime.

Called by ``fleetplane provisioner run`` through ``run`` and by the benchmark through ``serve``.
With ``election``, replicas elect one leader on a Lease and only the leader runs kopf; a new leader
starts as a fresh operator: resume handlers and daemons reconcile every object from what it holds.
Handlers are thin: each finds the definition an object belongs to and calls the ``Reconciler``.
Every composite has a daemon: a loop that reconciles it, waits the ``Requeue`` delay while its
cluster comes up (woken early by a spec change) and ``resync_seconds`` once it is Ready, so a
workload process that died is restarted and drift is repaired. Claims are bound on create/update
and follow their composite's status through its watch events; deletions wait in their handler,
step by step, until the reconciler says they are done.

Composite and claim kinds are generated at run time from definitions, so the handlers select them
by CRD category (``composite`` / ``claim``, which the generated CRDs carry) and ignore kinds no
fleetplane definition generated.

Ready (``/readyz`` on ``--health-port``) once kopf has started (the provisioner's CRDs installed)
and watches definitions and compositions, while the management cluster's API server answers.
A standby is ready too, and says it stands by.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import kopf

from kubeio import kopf_operator, leader, objects, operator_readiness, probes
from kubeio.rest import KubeRest
from localinfra import build, versions
from localinfra.environment import Environment
from localinfra.tuning import TUNED, WorkerTuning
from maestro.client import Credentials, MaestroClient
from maestro.transport import layout
from provisioner import api, catalog, compositions, reconciler, render, xrd
from provisioner import metrics as metrics_mod
from provisioner.functions import installed, wire
from provisioner.providers.base import ClusterProvider
from provisioner.providers.local import LocalProvider
from provisioner.providers.simulated import SimulatedProvider
from trust import authority, files

log = logging.getLogger(__name__)

FINALIZER = "fleetplane.io/provisioner"
MAESTRO_SOURCE = "fleetplane-provisioner"
#: what kopf must watch for the provisioner to do its work (composite and claim kinds come later)
WATCHED = tuple(
    operator_readiness.Kind(api.GROUP, plural) for plural in ("compositeresourcedefinitions", "compositions")
)
COMPOSITIONS_DIR = catalog.COMPOSITIONS_DIR


@dataclasses.dataclass(frozen=True)
class ProvisionerSettings:
    kubeconfig: str | None
    maestro: str
    kafka: str
    #: the provisioner's Maestro identity: it registers and deletes consumers, so an admin
    #: certificate, or a hub token allowed ``admin`` on ``consumers`` and ``list`` on all sources
    maestro_credentials: Credentials
    #: the Maestro server's (its default unless the server was given another)
    topic_prefix: str = layout.DEFAULT.prefix
    hub_name: str = "hub"
    inventory_namespace: str = "argocd"
    #: the folder of the local environment whose etcd local clusters share (``fleetplane local up``)
    local_env: Path | None = None
    #: what the local provider's worker processes are told to hold less memory (``localinfra.tuning``)
    local_tuning: WorkerTuning = TUNED
    aws_region: str | None = None
    aws_endpoint: str | None = None
    #: serve the ``simulated`` provider (clusters in this process's memory, for benchmarks)
    simulated: bool = False
    compositions_dir: Path = COMPOSITIONS_DIR
    argocd_install: Path | None = None
    resync_seconds: float = 30.0
    drain_seconds: float = 120.0
    liveness: str | None = None
    #: the Lease replicas compete for (None: run at once, as the only replica)
    election: leader.Election | None = None
    #: where /healthz and /readyz answer plain HTTP (None: nowhere; 0: a free port), leader and
    #: standbys alike
    health_port: int | None = None
    health_host: str = probes.LOOPBACK
    #: where /metrics answers plain HTTP (None: nowhere; 0: a free port), leader and standbys alike
    metrics_port: int | None = None
    metrics_host: str = probes.LOOPBACK
    #: the platform CA's folder (``ca.crt``, ``ca.key``), which issues each cluster's agent identity;
    #: default: the local environment's (``<local_env>/pki``). A subordinate CA's folder also holds
    #: ``chain.crt`` (the CAs above it up to the root) and, where the brokers present another CA's
    #: certificates, ``kafka-ca.crt``: both go into every agent's Secret.
    ca_dir: Path | None = None
    #: composition function servers, ``NAME=HOST:PORT`` (see ``provisioner.functions.wire``)
    function_servers: tuple[str, ...] = ()
    #: mTLS to them: ``ca.crt``, ``tls.crt``, ``tls.key`` (None: plaintext, for loopback)
    function_tls_dir: Path | None = None


def _authority(settings: ProvisionerSettings) -> authority.CertificateAuthority | None:
    folder = settings.ca_dir or (settings.local_env / "pki" if settings.local_env else None)
    if folder is None:
        return None
    cert, key, chain = folder / "ca.crt", folder / "ca.key", folder / authority.CHAIN_FILE
    if not (cert.is_file() and key.is_file()):
        raise ValueError(
            f"the CA folder {folder} needs ca.crt and ca.key (--ca-dir): they issue agents' identities"
        )
    return authority.CertificateAuthority.load(cert, key, chain=chain if chain.is_file() else None)


def _kafka_ca(settings: ProvisionerSettings) -> bytes | None:
    """The brokers' CAs that agents verify Kafka against, when not the platform CA: ``kafka-ca.crt``
    in the CA folder (given to every agent's Secret)."""
    folder = settings.ca_dir
    bundle = folder / files.KAFKA_CA_FILE if folder is not None else None
    return bundle.read_bytes() if bundle is not None and bundle.is_file() else None


@dataclasses.dataclass
class Provisioner:
    registry: kopf.OperatorRegistry
    kopf_settings: kopf.OperatorSettings
    reconciler: reconciler.Reconciler
    late_kinds: kopf_operator.LateKinds
    metrics: metrics_mod.ProvisionerMetrics
    kopf_state: operator_readiness.KopfState
    readiness: probes.Readiness


def _providers(settings: ProvisionerSettings) -> dict[str, ClusterProvider]:
    providers: dict[str, ClusterProvider] = {}
    if settings.local_env:
        env = Environment(settings.local_env)
        providers["local"] = LocalProvider(
            env.child("provisioned"), env.endpoint("etcd")["url"], settings.local_tuning
        )
    if settings.aws_region:
        from provisioner.providers.aws import AwsProvider  # boto3 only when asked for

        providers["aws"] = AwsProvider.for_region(settings.aws_region, endpoint_url=settings.aws_endpoint)
    if settings.simulated:
        providers["simulated"] = SimulatedProvider()
    return providers


def _platform(settings: ProvisionerSettings, hub_server: str) -> dict[str, Any]:
    install = settings.argocd_install or build.argocd_manifests_dir() / "install.yaml"
    if not install.is_file():
        raise ValueError(
            f"Argo CD's release manifests are not at {install}: run `fleetplane local build` (it caches them)"
        )
    return render.platform_values(
        hub_name=settings.hub_name,
        hub_server=hub_server,
        inventory_namespace=settings.inventory_namespace,
        maestro_grpc=settings.maestro,
        kafka=settings.kafka,
        topic_prefix=settings.topic_prefix,
        argocd_version=versions.ARGOCD,
        argocd_install=catalog.load_documents(install),
    )


def build_operator(settings: ProvisionerSettings) -> Provisioner:
    hub = KubeRest.from_kubeconfig(settings.kubeconfig)
    providers = _providers(settings)
    if not providers:
        raise ValueError("no cluster provider: pass --local-env NAME, --aws-region REGION and/or --simulated")
    maestro = MaestroClient(settings.maestro, source=MAESTRO_SOURCE, credentials=settings.maestro_credentials)
    servers = wire.parse_servers(
        list(settings.function_servers),
        wire.Tls(settings.function_tls_dir) if settings.function_tls_dir else None,
    )

    def report(obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        kopf.event(obj, type=kind, reason=reason, message=message[:1000])  # type: ignore[arg-type]

    # composite and claim kinds are served while the operator runs
    late_kinds = kopf_operator.LateKinds(hub)
    rec = reconciler.Reconciler(
        hub,
        maestro,
        providers,
        reconciler.Settings(
            compositions_dir=settings.compositions_dir,
            platform=_platform(settings, hub.server),
            drain_seconds=settings.drain_seconds,
            authority=_authority(settings),
            kafka_ca=_kafka_ca(settings),
            functions=installed.installed(servers),
        ),
        report=report,
        kinds_served=late_kinds.ensure_watched,
    )
    registry = kopf.OperatorRegistry()
    metrics = metrics_mod.ProvisionerMetrics()
    _register(registry, rec, settings, metrics)

    @kopf.on.login(registry=registry)
    def authenticate(**_: Any) -> kopf.ConnectionInfo:
        return kopf_operator.connection(settings.kubeconfig)

    @kopf.on.startup(registry=registry)
    async def install_crds(**_: Any) -> None:
        await install_platform(rec.hub)

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await rec.close()
        for server in servers.values():
            await server.close()
        await maestro.close()
        await hub.close()

    kopf_settings = kopf_operator.settings(finalizer=FINALIZER, prefix="provisioner.fleetplane.io")
    kopf_state = operator_readiness.KopfState(late_kinds.insights)
    readiness = probes.Readiness(
        {
            "kopf": kopf_state.check(WATCHED),
            "the management cluster's API server": operator_readiness.api_server_check(
                hub, "the management cluster's API server"
            ),
        }
    )
    return Provisioner(registry, kopf_settings, rec, late_kinds, metrics, kopf_state, readiness)


async def install_platform(hub: objects.Objects) -> None:
    """The provisioner's own CRDs (definitions, compositions, revisions), served before anything."""
    crds = api.platform_crds()
    for crd in crds:
        await hub.apply(crd, field_manager=reconciler.FIELD_MANAGER)
    for crd in crds:
        await hub.wait_established(crd["metadata"]["name"])


async def install(hub: objects.Objects, folder: Path, inventory_namespace: str = "argocd") -> None:
    """What a platform install applies: the provisioner's CRDs, the hub inventory's namespace, and a
    composition folder's definition and Composition (``definition.yaml``, ``composition.yaml``)."""
    await install_platform(hub)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": inventory_namespace}}
    await hub.apply(namespace, field_manager=reconciler.FIELD_MANAGER)
    for name in ("definition.yaml", "composition.yaml"):
        for obj in catalog.load_documents(folder / name):
            await hub.apply(obj, field_manager=reconciler.FIELD_MANAGER)


async def _until_done(step: Callable[[], Awaitable[None]], stopped: kopf.DaemonStopped | None = None) -> None:
    """Run ``step`` until it no longer asks to be called again; the waits between calls are the
    ``Requeue`` delays (kopf's own retries would log every wait as an error)."""
    while True:
        try:
            await step()
            return
        except reconciler.Requeue as exc:
            log.debug("%s; again in %.0fs", exc, exc.delay)
            if stopped is not None:
                if await stopped.wait(exc.delay):
                    return
            else:
                await asyncio.sleep(exc.delay)


def _register(
    registry: kopf.OperatorRegistry,
    rec: reconciler.Reconciler,
    settings: ProvisionerSettings,
    metrics: metrics_mod.ProvisionerMetrics,
) -> None:
    group, version = api.GROUP, api.VERSION
    wakeups: dict[str, asyncio.Event] = {}
    latest_revisions: dict[str, str] = {}

    async def definition_of(body: Mapping[str, Any], *, claim: bool) -> dict[str, Any] | None:
        """The definition that generated this kind, when ``body`` is of the side asked for."""
        definitions = await rec.recent_objects(group, version, "compositeresourcedefinitions")
        found = xrd.find_definition(definitions, str(body.get("apiVersion")), str(body.get("kind")))
        if found is None or xrd.is_claim(body, found) != claim:
            return None
        return found

    @kopf.on.resume(group, version, "compositeresourcedefinitions", registry=registry, id="definition-resume")
    @kopf.on.create(group, version, "compositeresourcedefinitions", registry=registry, id="definition-create")
    @kopf.on.update(group, version, "compositeresourcedefinitions", registry=registry, id="definition-update")
    async def definition(body: kopf.Body, **_: Any) -> None:
        try:
            with metrics.reconciling(metrics_mod.DEFINITION):
                await rec.reconcile_definition(dict(body))
        except xrd.DefinitionError as exc:
            raise kopf.PermanentError(str(exc)) from exc

    @kopf.on.resume(group, version, "compositions", registry=registry, id="composition-resume")
    @kopf.on.create(group, version, "compositions", registry=registry, id="composition-create")
    @kopf.on.update(group, version, "compositions", registry=registry, id="composition-update")
    async def composition(name: str, body: kopf.Body, **_: Any) -> None:
        try:
            with metrics.reconciling(metrics_mod.COMPOSITION):
                latest = await rec.reconcile_composition(dict(body))
        except (compositions.CompositionError, catalog.CatalogError) as exc:
            raise kopf.TemporaryError(str(exc), delay=30) from exc
        # A new revision wakes every composite, so those under the Automatic policy move to it now
        # rather than at their next resync (the others' pass changes nothing).
        if latest_revisions.setdefault(name, latest) != latest:
            latest_revisions[name] = latest
            for wakeup in wakeups.values():
                wakeup.set()

    # A composite is served by a daemon: a level-based loop that reconciles, waits (briefly while
    # its cluster comes up, ``resync_seconds`` once Ready) and is woken early by a spec change.
    @kopf.daemon(category="composite", registry=registry, id="composite", cancellation_timeout=10.0)
    async def composite(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        # Namespaced composites of one name in two namespaces are two clusters: key by the cluster.
        name = xrd.cluster_name(body)
        wakeup = wakeups.setdefault(name, asyncio.Event())
        try:
            while not stopped:
                wakeup.clear()
                delay = settings.resync_seconds
                definition = await definition_of(body, claim=False)
                if definition is None:
                    return
                if not body.meta.get("deletionTimestamp"):
                    if metrics.cluster_state(name) is None:
                        metrics.cluster(name, metrics_mod.PROVISIONING)
                    try:
                        with metrics.reconciling(metrics_mod.COMPOSITE):
                            await rec.reconcile_composite(dict(body), definition)
                    except reconciler.Requeue as exc:
                        delay = exc.delay
                        metrics.cluster(name, metrics_mod.FAILED if exc.failed else metrics_mod.PROVISIONING)
                    except Exception as exc:  # a pass failing for a reason we did not foresee
                        log.warning("composite %s: pass failed, retrying in 30s: %s", name, exc)
                        delay = 30.0
                        metrics.cluster(name, metrics_mod.FAILED)
                    else:
                        metrics.cluster(name, metrics_mod.READY)
                # Woken by a spec change or kopf stopping us (deleted, shutdown), else after ``delay``.
                waits = {asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())}
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()
        finally:
            wakeups.pop(name, None)
            # Stopped for its deletion, the cluster stays counted until the deletion handler is done
            # with it (kopf stops the daemon and runs the handler at the same time).
            deleting = metrics.cluster_state(name) == metrics_mod.DELETING or body.meta.get(
                "deletionTimestamp"
            )
            if not deleting:
                metrics.forget_cluster(name)

    @kopf.on.event(category="composite", registry=registry, id="composite-changed")
    async def composite_changed(type: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        if type in ("ADDED", "MODIFIED", None) and await definition_of(body, claim=False) is not None:
            await rec.composite_changed(dict(body))

    @kopf.on.update(category="composite", registry=registry, id="composite-spec", field="spec")
    async def composite_spec(body: kopf.Body, **_: Any) -> None:
        cluster = xrd.cluster_name(body)
        if rec.bound_by_its_pass(cluster, int(body.meta.get("generation") or 0)):
            return
        event = wakeups.get(cluster)
        if event is not None:
            event.set()

    @kopf.on.delete(category="composite", registry=registry, id="composite-delete")
    async def composite_deleted(body: kopf.Body, **_: Any) -> None:
        name = xrd.cluster_name(body)
        definition = await definition_of(body, claim=False)
        if definition is None:
            metrics.forget_cluster(name)  # its definition went first: nothing left to delete here
            return

        async def step() -> None:
            with metrics.reconciling(metrics_mod.COMPOSITE, metrics_mod.DELETE):
                await rec.delete_composite(dict(body), definition)

        metrics.cluster(name, metrics_mod.DELETING)
        await _until_done(step)
        metrics.forget_cluster(name)

    @kopf.on.resume(category="claim", registry=registry, id="claim-resume")
    @kopf.on.create(category="claim", registry=registry, id="claim-create")
    @kopf.on.update(category="claim", registry=registry, id="claim-update")
    async def claim(body: kopf.Body, **_: Any) -> None:
        definition = await definition_of(body, claim=True)
        if definition is not None:
            with metrics.reconciling(metrics_mod.CLAIM):
                await rec.reconcile_claim(dict(body), definition)

    @kopf.on.delete(category="claim", registry=registry, id="claim-delete")
    async def claim_deleted(body: kopf.Body, **_: Any) -> None:
        definition = await definition_of(body, claim=True)
        if definition is None:
            return

        async def step() -> None:
            with metrics.reconciling(metrics_mod.CLAIM, metrics_mod.DELETE):
                await rec.delete_claim(dict(body), definition)

        await _until_done(step)


async def serve(settings: ProvisionerSettings) -> None:
    """Build and run the provisioner in the current event loop (its clients bind to it)."""
    provisioner = build_operator(settings)
    await kopf_operator.operate(
        provisioner.registry,
        provisioner.kopf_settings,
        state=provisioner.kopf_state,
        liveness=settings.liveness,
        election=settings.election,
        metrics=kopf_operator.MetricsPort(
            provisioner.metrics.registry, settings.metrics_host, settings.metrics_port
        ),
        health=kopf_operator.HealthPort(provisioner.readiness, settings.health_host, settings.health_port),
    )


def run(settings: ProvisionerSettings) -> None:
    asyncio.run(serve(settings))
