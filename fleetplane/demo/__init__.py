"""``fleetplane demo``: the three ApplicationSet lifecycle cases, played on the local fleet.

``fleetplane/local_cli.py`` brings the bootstrap's local stack up (the management cluster, the
platform's processes, the claimed worker clusters) and calls ``journey.play``, which plays the
cases while ``view`` shows the hub's Applications live.
"""
