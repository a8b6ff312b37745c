"""The local clusters' CA: made once per folder, even when clusters start at the same moment.

Cases: eight threads asking at once for a new folder's CA all get the same certificate and key
(the provisioner starts each new cluster in a thread of its own; a second CA made meanwhile left
clusters whose API server did not trust their admin certificate); a certificate issued by it
verifies against it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509

from localinfra import pki


def test_concurrent_first_calls_share_one_ca(tmp_path: Path) -> None:
    seen: list[tuple[bytes, bytes]] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        pair = pki.ensure_ca(tmp_path / "pki")
        seen.append((pair.cert.read_bytes(), pair.key.read_bytes()))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len(set(seen)) == 1


def test_issued_certificates_verify_against_the_ca(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    admin = pki.issue(ca, tmp_path / "c1", "admin", cn="c1-admin", org="system:masters")
    issued = x509.load_pem_x509_certificate(admin.cert.read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
