"""Kafka layout and the CloudEvents binary binding.

Cases: the spec topic grows in whole chunks and always holds the highest allocated partition;
attributes round-trip through ``ce_`` headers in their canonical string form (ints, booleans, UTC
times); the content type travels in its own header; foreign headers are ignored.
"""

from __future__ import annotations

import datetime

import pytest

from maestro.transport import binding, layout


@pytest.mark.parametrize(
    ("highest", "want"),
    [(0, 64), (63, 64), (64, 128), (2999, 3008)],
    ids=["first", "chunk-edge", "next-chunk", "seed-scale"],
)
def test_spec_topic_grows_in_chunks(highest: int, want: int) -> None:
    assert layout.partitions_for(highest) == want
    assert layout.partitions_for(highest) > highest


def test_binary_binding_round_trip() -> None:
    when = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    headers = binding.encode(
        {
            "id": "e1",
            "specversion": "1.0",
            "resourceversion": 3,
            "deleted": False,
            "time": when,
            "skip": None,
        },
        content_type="application/json",
    )
    attrs, content_type = binding.decode([*headers, ("traceparent", b"00-abc")])
    assert attrs == {
        "id": "e1",
        "specversion": "1.0",
        "resourceversion": "3",
        "deleted": "false",
        "time": "2026-11-23T10:00:00Z",
    }
    assert content_type == "application/json"
