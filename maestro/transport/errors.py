"""What Kafka's refusals become here: a failed publish, or a principal the authorizer refused."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


class PublishError(RuntimeError):
    """Kafka did not acknowledge every message of a publish: some failed, or are still pending."""


# Kafka refused the principal the operation: it fails the same way until someone grants an ACL.
_AUTHORIZATION = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)


class AuthorizationError(RuntimeError):
    """Kafka's authorizer refused this process's principal an operation. Permanent: retrying
    changes nothing until the principal is granted an ACL (or the process is given the certificate
    of the identity that has one)."""

    def __init__(self, principal: str, what: str, error: KafkaError | None) -> None:
        self.principal = principal
        self.error = error
        name = error.name() if error is not None else "not authorized"
        super().__init__(
            f"Kafka refused {principal} {what}: {name}. Its ACLs are granted by the Maestro server "
            "when the cluster is registered (for the certificate of the cluster's current "
            "placement slot); check the consumer exists and this process has its certificate"
        )


def authorization_failure(error: KafkaError | None) -> bool:
    return error is not None and error.code() in _AUTHORIZATION


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The `KafkaError` an exception of confluent-kafka carries, if any."""
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def refused(exc: KafkaException, principal: str, what: str) -> Exception:
    """The exception to raise for ``exc``: an `AuthorizationError` if Kafka refused, else ``exc``."""
    error = kafka_error(exc)
    if authorization_failure(error):
        return AuthorizationError(principal, what, error)
    return exc
