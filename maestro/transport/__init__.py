"""Kafka transport: topic layout, the CloudEvents Kafka binding, and the clients servers and agents use."""
