"""The benchmarks behind ``fleetplane bench``: each starts what it needs in a temporary environment,
drives the platform and returns figures; none passes or fails on time.

``pipeline`` (Maestro under load, with ``simulated`` agents), ``fleet`` (the hub controllers end to
end), ``hub`` (one mirror write's cost to the hub API server), ``provision`` (claims to Ready
clusters). ``progress`` is what they show while they run; ``timeline``, ``charts`` and ``reports``
are what ``--report`` writes. No product package imports this one (an import-linter contract).
"""
