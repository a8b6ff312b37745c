"""fleetplane: the command line that wires every component's subcommands together."""
