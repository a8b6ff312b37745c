"""What the agents sent on their status topics, read from the beginning: the status sequence ids
an exact outcome checks (none sent twice, each resource's in order)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from maestro.api import bundle_events, bundles, events
from maestro.transport import binding, cloudevents
from maestro.transport.connection import KafkaSettings
from maestro.transport.messages import Incoming


def status_reports(
    kafka: KafkaSettings, topics: Sequence[str], timeout: float = 60
) -> list[bundles.StatusReport]:
    """Every status report on the status topics (one partition each), in each topic's order."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"status-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {t: consumer.get_watermark_offsets(TopicPartition(t, 0), timeout=30)[1] for t in topics}
        consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in topics if ends[t] > 0])
        pending = {t for t, end in ends.items() if end > 0}
        out: list[bundles.StatusReport] = []
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"could not read {pending} to the end within {timeout:.0f}s"
            for msg in consumer.consume(500, 0.5):
                if msg.error() is not None:
                    continue
                topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
                if offset >= ends[topic]:
                    continue
                headers = cast(list[tuple[str, bytes | str | None]] | None, msg.headers())
                attributes, content_type = binding.decode(headers)
                incoming = Incoming(topic, partition, offset, None, attributes, content_type, msg.value())
                event = cloudevents.from_message(incoming)
                if bundle_events.event_type(event).sub_resource is events.SubResource.STATUS:
                    out.append(bundle_events.parse_status_report(event))
                if offset >= ends[topic] - 1:
                    pending.discard(topic)
        return out
    finally:
        consumer.close()
