"""Maestro: the server (gRPC API, PostgreSQL state, Kafka publish/consume) and the per-cluster agent.

Layers, lowest first: `api` (pure domain) -> `wire` (protobuf <-> domain) and `storage` (PostgreSQL)
-> `transport` (Kafka) -> `server` and `agent`.
"""
