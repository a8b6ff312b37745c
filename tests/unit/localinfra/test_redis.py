"""Redis's wire format as the readiness probe and the transport tests speak it."""

from __future__ import annotations

from localinfra import redis


def test_command_is_a_resp_array_of_bulk_strings() -> None:
    assert redis.command("PING") == b"*1\r\n$4\r\nPING\r\n"
    assert redis.command("AUTH", "pä ss") == b"*2\r\n$4\r\nAUTH\r\n$6\r\np\xc3\xa4 ss\r\n"
