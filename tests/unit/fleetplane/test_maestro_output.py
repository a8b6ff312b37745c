"""``fleetplane maestro``'s lists and gets through the output helper.

Cases: ``consumers list`` as a table (partition only with -o wide) and as a JSON list of records;
``consumers get`` as one row and as the record ``-o json`` has always printed; ``works get -o
yaml`` with its spec, metadata and status decoded; ``certificates list`` with the serial in hex;
an empty list says so on stderr.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fleetplane.cli import app
from fleetplane.maestro_connection import Connection
from maestro.api import consumers, listing, revocations

runner = CliRunner()
CONSUMER = consumers.Consumer(
    name="worker-1",
    labels={"env": "dev"},
    placement=consumers.Placement("maestro.spec.7", 0),
    slot=7,
    status_topic="maestro.status.7",
)


def answered(monkeypatch: pytest.MonkeyPatch, reply: Any) -> None:
    """Every Maestro call answers ``reply``."""
    monkeypatch.setattr(Connection, "call", lambda *_: reply)


def invoke(*args: str) -> Any:
    result = runner.invoke(app, ["maestro", *args, "--insecure"])
    assert result.exit_code == 0, result.output
    return result


def test_consumers_list_as_a_table_and_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    answered(monkeypatch, [CONSUMER])
    lines = invoke("consumers", "list").output.splitlines()
    assert lines[0].split() == ["NAME", "LABELS", "INCARNATION", "SPEC", "TOPIC", "STATUS", "TOPIC"]
    assert lines[1].split() == ["worker-1", "env=dev", "7", "maestro.spec.7", "maestro.status.7"]
    assert "PARTITION" in invoke("consumers", "list", "-o", "wide").output
    record = {
        "name": "worker-1",
        "labels": {"env": "dev"},
        "topic": "maestro.spec.7",
        "partition": 0,
        "status_topic": "maestro.status.7",
        "incarnation": 7,
    }
    assert json.loads(invoke("consumers", "list", "-o", "json").output) == [record]
    answered(monkeypatch, CONSUMER)
    assert json.loads(invoke("consumers", "get", "worker-1", "-o", "json").output) == record
    assert len(invoke("consumers", "get", "worker-1").output.splitlines()) == 2


def test_works_get_decodes_the_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    status = {"conditions": [{"type": "Applied", "status": "True"}]}
    work = listing.BundleSummary(
        id="0b5c",
        consumer="worker-1",
        source="hub",
        version=3,
        deletion=listing.DeletionState.ACTIVE,
        spec_json=json.dumps({"manifests": []}).encode(),
        metadata_json=json.dumps({"name": "guestbook"}).encode(),
        status_json=json.dumps(status).encode(),
        status_sequence=0,
        status_hash="",
        status_version=0,
    )
    answered(monkeypatch, work)
    printed = yaml.safe_load(invoke("works", "get", "0b5c", "-o", "yaml").output)
    assert printed["state"] == "active" and printed["spec"] == {"manifests": []}
    assert printed["metadata"] == {"name": "guestbook"} and printed["status"] == status
    row = invoke("works", "get", "0b5c", "-o", "wide").output.splitlines()[1].split()
    assert row == ["0b5c", "guestbook", "worker-1", "hub", "3", "active", "Applied=True"]


def test_certificates_list(monkeypatch: pytest.MonkeyPatch) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    answered(monkeypatch, [revocations.Revocation(255, "lost laptop", "admin", at)])
    lines = invoke("certificates", "list").output.splitlines()
    assert lines[1].split() == ["0xff", "2026-01-02", "03:04:05", "admin", "lost", "laptop"]
    answered(monkeypatch, [])
    empty = invoke("certificates", "list")
    assert empty.stdout == "" and "No revoked certificates." in empty.stderr
