"""Maestro's domain: pure types and rules, no I/O (no grpc, no psycopg, no Kafka).

Every other Maestro layer builds on these modules; import the module, not its names
(`from maestro.api import bundles` then `bundles.ResourceBundle`):

- `errors`: the error kinds every layer raises and the server maps to status codes;
- `consumers`: clusters that receive work, and where their events go in Kafka;
- `bundles`: resource bundles (ManifestWorks), their specs, statuses and requests;
- `validation`: checking a ManifestBundle or status payload from the outside world;
- `lifecycle`: version, conflict, staleness and deletion rules;
- `resync`: what to re-send to an agent or a source that asks to resync;
- `statushash`: the status hash sources compare when they resync;
- `ids`: upstream-compatible resource ids;
- `events`: the transport-neutral CloudEvent model and its JSON form;
- `bundle_events`: building and parsing manifest-bundle CloudEvents;
- `queries`: list filters and pages;
- `listing`: bundles as a source reads them back (listed summaries, watched status changes).
"""
