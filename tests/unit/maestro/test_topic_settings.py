"""The spec and status topics' settings: flags parsed into them, bad ones refused naming the flag
and the fix, and which configs an existing topic must have set again."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from fleetplane.cli import app
from maestro.transport.client_config import max_message_bytes
from maestro.transport.topic_settings import BROKER_DEFAULT, TopicSettings, TopicSettingsError, drift


def test_flags_make_the_wanted_configs() -> None:
    settings = TopicSettings.from_flags(3, 2, ["retention.ms=604800000", " cleanup.policy = delete "])
    assert settings.new_topic_replication == 3
    assert settings.wanted(1024 * 1024) == {
        "max.message.bytes": str(max_message_bytes(1024 * 1024)),
        "min.insync.replicas": "2",
        "retention.ms": "604800000",
        "cleanup.policy": "delete",
    }


def test_no_flags_leave_replication_to_the_brokers() -> None:
    settings = TopicSettings.from_flags(None, None, [])
    assert settings.new_topic_replication == BROKER_DEFAULT
    assert settings.wanted(1000) == {"max.message.bytes": str(max_message_bytes(1000))}


@pytest.mark.parametrize(
    ("rf", "isr", "pairs", "message"),
    [
        (0, None, [], "--topic-replication-factor must be at least 1"),
        (None, 0, [], "--topic-min-insync-replicas must be at least 1"),
        (2, 3, [], "--topic-min-insync-replicas 3 exceeds --topic-replication-factor 2"),
        (None, None, ["retention.ms"], "give KEY=VALUE"),
        (None, None, ["retention.ms="], "give a value"),
        (None, None, ["Retention=1"], "not a Kafka topic config name"),
        (None, None, ["max.message.bytes=10"], "it follows --bundle-limit"),
        (None, None, ["min.insync.replicas=2"], "give --topic-min-insync-replicas"),
        (None, None, ["retention.ms=1", "retention.ms=2"], "given twice"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag(
    rf: int | None, isr: int | None, pairs: list[str], message: str
) -> None:
    with pytest.raises(TopicSettingsError, match=re.escape(message)):
        TopicSettings.from_flags(rf, isr, pairs)


def test_drift_is_what_differs_or_is_missing() -> None:
    wanted = {"max.message.bytes": "200", "min.insync.replicas": "2", "retention.ms": "5"}
    held = {"max.message.bytes": "100", "min.insync.replicas": "2", "segment.bytes": "9"}
    assert drift(wanted, held) == {"max.message.bytes": "200", "retention.ms": "5"}
    assert drift(wanted, wanted) == {}


def test_the_server_refuses_a_bad_topic_flag_before_starting() -> None:
    result = CliRunner().invoke(
        app,
        [
            "maestro",
            "server",
            "--dsn",
            "postgresql://nowhere/db",
            "--kafka",
            "127.0.0.1:1",
            "--insecure",
            "--topic-replication-factor",
            "3",
            "--topic-min-insync-replicas",
            "4",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--topic-min-insync-replicas 4 exceeds --topic-replication-factor 3" in result.output
