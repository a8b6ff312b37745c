"""A broker with a relayed listener advertises the relay's port for it, and only for it."""

from __future__ import annotations

from localinfra.kafka_config import Relayed, _listeners


def test_the_relayed_listener_is_bound_on_its_port_and_advertised_at_the_relay() -> None:
    lines = dict(
        line.split("=", 1) for line in _listeners(9092, 9093, secure=True, relayed=Relayed(9094, 19094))
    )
    assert lines["listeners"] == "SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,RELAYED://127.0.0.1:9094"
    assert lines["advertised.listeners"] == (
        "SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,RELAYED://127.0.0.1:19094"
    )
    assert lines["listener.security.protocol.map"] == "CONTROLLER:SSL,SSL:SSL,RELAYED:SSL"
    assert lines["inter.broker.listener.name"] == "SSL"


def test_without_a_relay_the_listeners_are_the_client_and_controller_ones() -> None:
    lines = dict(line.split("=", 1) for line in _listeners(9092, 9093, secure=False))
    assert (
        lines["listeners"]
        == lines["advertised.listeners"]
        == ("PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")
    )
    assert lines["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
