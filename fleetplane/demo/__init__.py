"""``fleetplane demo``: the source document's three ApplicationSet cases, played on the local fleet.

``fleetplane/local_cli.py`` starts the fleet (``localinfra.fleet.up``) and calls
``journey.play``, which starts the pull pipeline on it (``pipeline.start``: Maestro server, agents,
hub controllers, inventory) and plays the cases while ``view`` shows the hub's Applications live.
"""
