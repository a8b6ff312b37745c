"""Benchmarks of the Maestro pipeline: they print figures; they never pass or fail on time."""
