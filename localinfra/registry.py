"""A local OCI registry (CNCF distribution) on loopback, serving TLS with a certificate from the
platform CA: where images are pushed with skopeo and read back.

The registry is compiled once from its Go module at :data:`localinfra.versions.REGISTRY` into the
cache's ``bin/``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

from localinfra import build_steps, paths, ports, versions
from localinfra.errors import InfraError
from localinfra.process import log_tail
from localinfra.progress import Reporter, stderr_reporter, step
from trust import authority
from trust.identity import Identity

MODULE = "github.com/distribution/distribution/v3"
_CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {cert}
    key: {key}
"""


def binary() -> Path:
    return paths.bin_dir() / "registry"


def ensure_registry(report: Reporter = stderr_reporter) -> Path:
    target = binary()
    with build_steps.building("registry", versions.REGISTRY, [target]) as needed:
        if not needed:
            return target
        build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
        work = paths.build_dir("registry")
        work.mkdir(parents=True, exist_ok=True)
        with step(
            report, f"building the OCI registry {versions.REGISTRY} from its Go module", estimate=240.0
        ):
            build_steps.run(
                ["go", "install", *build_steps.GO_FLAGS, f"{MODULE}/cmd/registry@{versions.REGISTRY}"],
                cwd=work,
                log=work / "build.log",
                what="go install registry",
                env={**build_steps.go_env(), "GOTOOLCHAIN": "auto", "GOBIN": str(target.parent)},
                report=report,
            )
    return target


@dataclasses.dataclass
class Registry:
    """A running registry: ``address`` is ``127.0.0.1:PORT``; ``ca`` is the certificate it chains to."""

    address: str
    ca: Path
    process: subprocess.Popen[bytes]
    folder: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def certs_dir(self) -> Path:
        """A folder in the layout containers/image reads (``--cert-dir``, ``certs.d/<host:port>``):
        the CA the registry's certificate chains to."""
        folder = self.folder / "certs.d" / self.address
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, folder / "ca.crt")
        return folder


def start(folder: Path, ca: authority.CertificateAuthority, report: Reporter = stderr_reporter) -> Registry:
    """A registry storing its blobs under ``folder``, serving a certificate for 127.0.0.1 from ``ca``."""
    exe = ensure_registry(report)
    folder.mkdir(parents=True, exist_ok=True)
    port = ports.free_port()
    tls = ca.issue(Identity.service("registry"), hosts=("127.0.0.1", "localhost"), server=True)
    files = tls.write(folder / "tls", "tls", ca.cert_pem)
    config = folder / "config.yml"
    config.write_text(_CONFIG.format(root=folder / "data", port=port, cert=files.cert, key=files.key))
    log = folder / "registry.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(exe), "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
    registry = Registry(f"127.0.0.1:{port}", files.ca, process, folder)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InfraError("the registry exited at start", fix=f"read {log}", log_tail=log_tail(log, 20))
        if ports.is_listening(port):
            return registry
        time.sleep(0.2)
    registry.stop()
    raise InfraError("the registry did not listen within 30s", fix=f"read {log}", log_tail=log_tail(log, 20))
