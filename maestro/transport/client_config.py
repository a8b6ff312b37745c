"""librdkafka settings every client of this package shares: the connection, the logging of client
errors, and the message size limit derived from the bundle size limit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from maestro.transport.connection import KafkaSettings

log = logging.getLogger(__name__)


def max_message_bytes(bundle_limit: int) -> int:
    """Kafka's message limit derived from the one bundle size limit: the bundle plus headers and slack."""
    return bundle_limit + 64 * 1024


def base_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The connection settings of ``kafka``, with client-level errors logged under its principal."""
    return {**kafka.client_config(), "error_cb": _log_client_error(kafka.principal)}


def _log_client_error(principal: str) -> Callable[[KafkaError], None]:
    """librdkafka's client-level errors (a TLS handshake the broker refused, brokers down), said
    once each time they happen, with who this client is."""

    def logged(error: KafkaError) -> None:
        if error.code() in (KafkaError._SSL, KafkaError._AUTHENTICATION):
            log.error("Kafka refused the connection of %s: %s", principal, error.str())
        else:
            log.warning("Kafka client (%s): %s", principal, error.str())

    return logged
