"""Install or build every real component once, into the cache; skip what is already there.

PostgreSQL, Redis and git come from Debian packages; Kafka's jars from Maven Central; etcd,
kube-apiserver, kube-controller-manager, kubectl and Argo CD are compiled from their Go modules at
the versions in :mod:`localinfra.versions`. Each finished step leaves a stamp naming its version,
so a warm cache costs nothing and a version bump rebuilds only that component.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from localinfra import build_steps, helm, paths, versions
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

# Roughly how long each cold step takes on 2 cores with a fast network, in seconds: what a progress
# display shows as left (a warm cache skips the step).
ESTIMATES = {"debian": 90.0, "kafka": 60.0, "etcd": 240.0, "kube-argocd": 1500.0, "pulumi": 900.0}
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def ensure_debian_packages(report: Reporter = stderr_reporter) -> None:
    if postgres_bin_dir() and shutil.which("redis-server") and shutil.which("git"):
        return
    packages = " ".join(versions.DEBIAN_PACKAGES)
    if os.geteuid() != 0:
        raise InfraError(
            "PostgreSQL, Redis or git is missing",
            fix=f"sudo apt-get update && sudo apt-get install -y {packages}",
        )
    log = paths.build_dir("debian") / "apt.log"
    with step(report, f"installing Debian packages: {packages}", estimate=ESTIMATES["debian"]):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        build_steps.run(["apt-get", "update", "-q"], cwd=Path("/"), log=log, what="apt-get update", env=env)
        build_steps.run(
            ["apt-get", "install", "-y", "-q", *versions.DEBIAN_PACKAGES],
            cwd=Path("/"),
            log=log,
            what="apt-get install",
            env=env,
        )


def kafka_lib_dir() -> Path:
    return paths.build_dir("kafka") / versions.KAFKA / "lib"


_KAFKA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fleetplane.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <!-- Kafka logs through SLF4J 1; without a binding every broker message, errors included, is dropped -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def ensure_kafka(report: Reporter = stderr_reporter) -> None:
    lib = kafka_lib_dir()
    jars = [lib / f"kafka_2.13-{versions.KAFKA}.jar", lib / f"log4j-slf4j-impl-{versions.KAFKA_LOG4J}.jar"]
    with build_steps.building("kafka", versions.KAFKA, jars) as needed:
        if not needed:
            return
        build_steps.require_tool(
            "java", "apt-get install -y openjdk-17-jre-headless (Kafka 4 needs Java 17+)"
        )
        mvn = build_steps.require_tool("mvn", "apt-get install -y maven")
        work = lib.parent
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(_KAFKA_POM.format(version=versions.KAFKA, log4j=versions.KAFKA_LOG4J))
        with step(
            report,
            f"resolving Apache Kafka {versions.KAFKA} jars from Maven Central",
            estimate=ESTIMATES["kafka"],
        ):
            build_steps.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={lib}",
                    "-DincludeScope=runtime",
                ],
                cwd=work,
                log=work / "mvn.log",
                what="mvn copy-dependencies",
                report=report,
            )


def _go_mod_path(module: str, version: str, cwd: Path, log: Path) -> Path:
    """Download a module's go.mod through the proxy and return its path in the module cache."""
    return Path(go_download(module, version, cwd, log)["GoMod"])


def go_download(module: str, version: str, cwd: Path, log: Path) -> dict[str, str]:
    """``go mod download -json``: where the module's files are in the module cache."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **build_steps.go_env()},
        check=False,
    )
    if out.returncode != 0:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(out.stdout + out.stderr)
        raise InfraError(
            f"cannot download {module}@{version}", fix=f"read {log}", log_tail=out.stderr[-2000:]
        )
    info: dict[str, str] = json.loads(out.stdout)
    return info


def _versioned_replaces(gomod: Path) -> list[str]:
    """The ``replace`` lines of a go.mod that point at module versions (local paths are dropped)."""
    lines: list[str] = []
    in_block = False
    for raw in gomod.read_text().splitlines():
        line = raw.split("//")[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if line.startswith("replace "):
            line = line[len("replace ") :]
        elif not in_block:
            continue
        if "=>" in line and not line.split("=>")[1].strip().startswith("."):
            lines.append(line)
    return lines


def _staging_replaces(kube_gomod: Path) -> list[str]:
    """k8s.io/kubernetes replaces its staging modules with local folders; pin them to the release."""
    out = []
    for raw in kube_gomod.read_text().splitlines():
        line = raw.strip()
        if "=> ./staging/" in line:
            module = line.split("=>")[0].strip()
            out.append(f"{module} => {module} {versions.KUBERNETES_STAGING}")
    return out


def _kube_scratch_module(work: Path, log: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    bootstrap = work / "go.mod"
    go_version = versions.GO_TOOLCHAIN.removeprefix("go").rsplit(".", 1)[0] + ".0"
    bootstrap.write_text(
        f"module fleetplane.local/kubebuild\n\ngo {go_version}\n\ntoolchain {versions.GO_TOOLCHAIN}\n"
    )
    kube_mod = _go_mod_path("k8s.io/kubernetes", versions.KUBERNETES, work, log)
    argo_mod = _go_mod_path("github.com/argoproj/argo-cd/v3", versions.ARGOCD, work, log)
    replaces = dict.fromkeys(_staging_replaces(kube_mod))
    staged = {r.split("=>")[0].strip() for r in replaces}
    for line in _versioned_replaces(argo_mod):
        if line.split("=>")[0].strip() not in staged:
            replaces[line] = None
    body = "\n".join(f"\t{r}" for r in replaces)
    bootstrap.write_text(bootstrap.read_text() + f"\nreplace (\n{body}\n)\n")


def argocd_manifests_dir() -> Path:
    return paths.build_dir("argocd") / versions.ARGOCD / "manifests"


def argocd_helpers_dir() -> Path:
    return paths.build_dir("argocd") / versions.ARGOCD / "bin"


def ensure_kube_and_argocd(report: Reporter = stderr_reporter) -> None:
    bins = paths.bin_dir()
    outputs = [bins / c for c in KUBE_COMMANDS] + [
        bins / "argocd",
        argocd_manifests_dir() / "crds",
        argocd_helpers_dir() / "git-verify-wrapper.sh",
    ]
    version = f"{versions.KUBERNETES}+{versions.ARGOCD}+{versions.GO_TOOLCHAIN}"
    with build_steps.building("kube-argocd", version, outputs) as needed:
        if not needed:
            return
        build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
        build_steps.require_tool("git", "apt-get install -y git")
        work = paths.build_dir("kube")
        log = work / "build.log"
        with step(
            report,
            f"building Kubernetes {versions.KUBERNETES} and Argo CD {versions.ARGOCD} from Go modules",
            estimate=ESTIMATES["kube-argocd"],
        ):
            _kube_scratch_module(work, log)
            targets = [f"k8s.io/kubernetes/cmd/{c}@{versions.KUBERNETES}" for c in KUBE_COMMANDS]
            targets.append(f"github.com/argoproj/argo-cd/v3/cmd@{versions.ARGOCD}")
            build_steps.run(
                ["go", "get", *targets],
                cwd=work,
                log=log,
                what="go get (Kubernetes, Argo CD)",
                env=build_steps.go_env(),
                report=report,
            )
            bins.mkdir(parents=True, exist_ok=True)
            build_steps.run(
                [
                    "go",
                    "build",
                    *build_steps.GO_FLAGS,
                    "-o",
                    f"{bins}/",
                    *(f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS),
                ],
                cwd=work,
                log=log,
                what="go build kube-apiserver, kube-controller-manager, kubectl",
                env=build_steps.go_env(),
                report=report,
            )
            build_steps.run(
                [
                    "go",
                    "build",
                    *build_steps.GO_FLAGS,
                    "-o",
                    str(bins / "argocd"),
                    "github.com/argoproj/argo-cd/v3/cmd",
                ],
                cwd=work,
                log=log,
                what="go build argocd",
                env=build_steps.go_env(),
                report=report,
            )
            _copy_argocd_manifests(work)


def _copy_argocd_manifests(work: Path) -> None:
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v3"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, **build_steps.go_env()},
        check=True,
    )
    src = Path(out.stdout.strip()) / "manifests"
    dest = argocd_manifests_dir()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(src / "crds", dest / "crds")
    shutil.copy(src / "install.yaml", dest / "install.yaml")
    for path in dest.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    # The repo-server shells out to these helper scripts, which Argo CD's image puts on PATH.
    helpers = argocd_helpers_dir()
    helpers.mkdir(parents=True, exist_ok=True)
    for script in ("git-verify-wrapper.sh", "gpg-wrapper.sh"):
        shutil.copy(src.parent / "hack" / script, helpers / script)
        (helpers / script).chmod(0o755)


_ETCD_MAIN = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def ensure_etcd(report: Reporter = stderr_reporter) -> None:
    target = paths.bin_dir() / "etcd"
    with build_steps.building("etcd", versions.ETCD, [target]) as needed:
        if not needed:
            return
        build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
        work = paths.build_dir("etcd")
        work.mkdir(parents=True, exist_ok=True)
        log = work / "build.log"
        (work / "go.mod").write_text("module fleetplane.local/etcdbuild\n\ngo 1.26.0\n")
        (work / "main.go").write_text(_ETCD_MAIN)
        with step(report, f"building etcd {versions.ETCD} from its Go module", estimate=ESTIMATES["etcd"]):
            env = {**build_steps.go_env(), "GOTOOLCHAIN": "auto"}
            build_steps.run(
                ["go", "get", f"go.etcd.io/etcd/server/v3@{versions.ETCD}"],
                cwd=work,
                log=log,
                what="go get etcd",
                env=env,
                report=report,
            )
            build_steps.run(
                ["go", "mod", "tidy"], cwd=work, log=log, what="go mod tidy (etcd)", env=env, report=report
            )
            build_steps.run(
                ["go", "build", *build_steps.GO_FLAGS, "-o", str(target), "."],
                cwd=work,
                log=log,
                what="go build etcd",
                env=env,
                report=report,
            )


PULUMI_PKG = "github.com/pulumi/pulumi/pkg/v3"
PULUMI_SDK = "github.com/pulumi/pulumi/sdk/v3"

# The language host is fleetplane's own (``localinfra.pulumi_plugins`` says why), run by the
# interpreter of the virtualenv on PATH, as upstream's scripts run theirs.
_LANGUAGE_HOST = """#!/bin/sh
# Pulumi's Python language host, fleetplane's (see localinfra/pulumi_plugins.py).
PY="${PULUMI_PYTHON_CMD:-python3}"
if ! "$PY" -c "import localinfra.pulumi_plugins" 2>/dev/null; then
    echo "fleetplane's Pulumi language host needs fleetplane's virtualenv on PATH:" >&2
    echo "    source <fleetplane checkout>/.venv/bin/activate   (make build creates it)" >&2
    exit 1
fi
exec "$PY" -u -m localinfra.pulumi_plugins "$@"
"""


def ensure_pulumi(report: Reporter = stderr_reporter) -> None:
    """The Pulumi CLI compiled from its Go module at the SDK's pinned version, with the Python
    plugins next to it (found there as bundled plugins): upstream's program launcher and dynamic
    provider script from the same SDK module, and fleetplane's language host."""
    bin_dir = paths.bin_dir()
    # The bootstrap project's file backend (Pulumi.yaml's backend.url), which must exist.
    (paths.cache_root() / "pulumi").mkdir(parents=True, exist_ok=True)
    outputs = [bin_dir / n for n in ("pulumi", *PULUMI_PLUGINS)]
    with build_steps.building("pulumi", versions.PULUMI, outputs) as needed:
        if not needed:
            return
        build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
        work = paths.build_dir("pulumi")
        work.mkdir(parents=True, exist_ok=True)
        log = work / "build.log"
        pin = f"v{versions.PULUMI}"
        (work / "go.mod").write_text("module fleetplane.local/pulumibuild\n\ngo 1.26.0\n")
        with step(report, f"building the Pulumi CLI {pin} from its Go module", estimate=ESTIMATES["pulumi"]):
            pkg_mod = _go_mod_path(PULUMI_PKG, pin, work, log)
            replaces = "\n".join(f"replace {r}" for r in _versioned_replaces(pkg_mod))
            (work / "go.mod").write_text((work / "go.mod").read_text() + replaces + "\n")
            build_steps.go_get_and_build(
                [f"{PULUMI_PKG}/cmd/pulumi@{pin}", f"{PULUMI_SDK}@{pin}"],
                f"{PULUMI_PKG}/cmd/pulumi",
                bin_dir / "pulumi",
                version_flag=f"-X {PULUMI_SDK}/go/common/version.Version={pin}",
                work=work,
                log=log,
                name="pulumi",
                report=report,
            )
        sdk = Path(go_download(PULUMI_SDK, pin, work, log)["Dir"]) / "python"
        for source in (
            sdk / "cmd" / "pulumi-language-python-exec",
            sdk / "dist" / "pulumi-resource-pulumi-python",
        ):
            shutil.copyfile(source, bin_dir / source.name)
        (bin_dir / "pulumi-language-python").write_text(_LANGUAGE_HOST)
        for name in PULUMI_PLUGINS:
            (bin_dir / name).chmod(0o755)


PULUMI_PLUGINS = ("pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")


def ensure_all(report: Reporter = stderr_reporter, *, kube: bool = True) -> None:
    """Everything the fleet needs. Downloads (apt, Maven) run while Go compiles."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def guarded(fn: object) -> None:
        try:
            fn(report)  # type: ignore[operator]
        except BaseException as exc:  # collected and re-raised below, after the other steps end
            with lock:
                errors.append(exc)

    with ThreadPoolExecutor(max_workers=3) as pool:
        pool.submit(guarded, ensure_debian_packages)
        pool.submit(guarded, ensure_kafka)
        if kube:

            def go_builds(rep: Reporter) -> None:
                ensure_etcd(rep)
                ensure_kube_and_argocd(rep)
                ensure_pulumi(rep)
                helm.ensure_helm(rep)

            pool.submit(guarded, go_builds)
    if errors:
        raise errors[0]
