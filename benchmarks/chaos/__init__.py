"""``fleetplane bench chaos``: the chaos suite's faults struck at scale, on simulated agents."""
