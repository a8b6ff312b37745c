"""The Maestro server: gRPC APIs over PostgreSQL, an outbox relay to Kafka and a status ingester."""
