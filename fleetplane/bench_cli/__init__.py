"""``fleetplane bench``: benchmarks that print figures (never pass/fail on time)."""

from fleetplane.bench_cli import fleet_benches, maestro_benches, provision_bench
from fleetplane.bench_cli.typer_app import app

__all__ = ["app", "fleet_benches", "maestro_benches", "provision_bench"]
