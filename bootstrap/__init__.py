"""fleetplane's bootstrap: the Pulumi program (``__main__.py``) and its stacks."""
