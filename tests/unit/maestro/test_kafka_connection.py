"""How a process connects to Kafka: secure unless told otherwise, and as whom.

Cases: a TLS folder gives librdkafka TLS with the client's certificate and host name verification;
its ``kafka-ca.crt``, when present, verifies the brokers instead of ``ca.crt``;
a folder missing a file is refused naming what is missing; ``--tls-dir`` and ``--insecure`` are
one or the other, and neither is refused with how to fix it; plaintext says so in the log; the
principal is read from the certificate's subject as Kafka reads it; an agent refuses to start with
the certificate of another cluster, or of an earlier slot of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from maestro.agent import service
from maestro.api import consumers
from maestro.transport.connection import KafkaSettings, KafkaSettingsError, tls_dir_files
from trust import authority
from trust.identity import Identity


def identity_dir(tmp_path: Path, who: Identity) -> Path:
    ca = authority.CertificateAuthority.ensure(tmp_path / "pki")
    folder = tmp_path / f"{who.kind}-{who.name}"
    ca.issue(who).write(folder, "tls", ca.cert_pem)
    return folder


def test_a_tls_folder_gives_tls_with_the_clients_certificate(tmp_path: Path) -> None:
    folder = identity_dir(tmp_path, Identity.cluster("worker-1", 4))
    settings = KafkaSettings.from_flags("127.0.0.1:9093", folder, insecure=False)
    assert settings.client_config() == {
        "bootstrap.servers": "127.0.0.1:9093",
        "security.protocol": "SSL",
        "ssl.ca.location": str(folder / "ca.crt"),
        "ssl.certificate.location": str(folder / "tls.crt"),
        "ssl.key.location": str(folder / "tls.key"),
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert settings.is_secure and settings.principal == "User:cluster.worker-1.4"


def test_a_broker_ca_file_verifies_the_brokers_instead_of_the_platform_ca(tmp_path: Path) -> None:
    folder = identity_dir(tmp_path, Identity.service("maestro-server"))
    brokers_ca = authority.CertificateAuthority.create()
    (folder / "kafka-ca.crt").write_bytes(brokers_ca.cert_pem)
    config = KafkaSettings.from_flags("b-1.kafka.example:9094", folder, insecure=False).client_config()
    assert config["ssl.ca.location"] == str(folder / "kafka-ca.crt")
    # the client still proves who it is with its own pair
    assert config["ssl.certificate.location"] == str(folder / "tls.crt")
    assert config["ssl.key.location"] == str(folder / "tls.key")


def test_a_folder_missing_a_file_is_refused(tmp_path: Path) -> None:
    folder = identity_dir(tmp_path, Identity.service("maestro-server"))
    (folder / "tls.key").unlink()
    with pytest.raises(KafkaSettingsError, match=r"lacks tls\.key"):
        KafkaSettings.from_flags("127.0.0.1:9093", folder, insecure=False)


def test_one_of_tls_dir_and_insecure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = identity_dir(tmp_path, Identity.service("maestro-server"))
    with pytest.raises(KafkaSettingsError, match="exclude each other"):
        KafkaSettings.from_flags("k:9092", folder, insecure=True)
    with pytest.raises(KafkaSettingsError, match=r"give --tls-dir DIR .* or --insecure"):
        KafkaSettings.from_flags("k:9092", None, insecure=False)
    with caplog.at_level(logging.WARNING):
        plain = KafkaSettings.from_flags("k:9092", None, insecure=True)
    assert plain.client_config() == {"bootstrap.servers": "k:9092"}
    assert plain.principal == "User:ANONYMOUS" and "plaintext" in caplog.text


def _consumer(name: str, slot: int) -> consumers.Consumer:
    policy = consumers.PlacementPolicy()
    return consumers.Consumer(
        name, placement=policy.placement(slot), slot=slot, status_topic=policy.status_topic_of(slot)
    )


def test_an_agent_starts_only_with_its_clusters_certificate_for_its_slot(tmp_path: Path) -> None:
    mine = KafkaSettings.secure(
        "k:9093", tls_dir_files(identity_dir(tmp_path, Identity.cluster("worker-1", 4)))
    )
    service.check_identity(mine, _consumer("worker-1", 4))
    with pytest.raises(
        SystemExit, match=r"is for cluster/worker-1#4, but consumer worker-1 is cluster/worker-1#9"
    ):
        service.check_identity(mine, _consumer("worker-1", 9))
    with pytest.raises(SystemExit, match=r"User:cluster\.worker-2\.4"):
        service.check_identity(mine, _consumer("worker-2", 4))
    service.check_identity(KafkaSettings.insecure("k:9092"), _consumer("worker-2", 4))
