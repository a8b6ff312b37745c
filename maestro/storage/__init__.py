"""Maestro's PostgreSQL storage: schema migrations, queries and the transactional outbox.

All of Maestro's SQL lives in this package, always parameterised. The server builds one
`store.Store` over a pool from `pool.open_pool` after `migrations.migrate` has run; the outbox
relay and the status watch use the same `Store`.
"""
