"""The Pulumi program of fleetplane's bootstrap (``pulumi up`` in this folder).

``fleetplane:cloud`` picks the stack's kind: ``local`` (this machine, ``local_stack``) or ``aws``
(VPC, EKS, RDS, MSK: ``aws_stack``). A config value that is not valid stops the run before any
resource is touched, with a message naming the key and the command that fixes it.
"""

import pulumi

from bootstrap import stack_config

config = pulumi.Config()
reader = stack_config.Reader(config.get)
try:
    cloud = reader.choice("cloud", "local", ("local", "aws"))
    if cloud == "local":
        from bootstrap import local_stack

        local_stack.run(local_stack.LocalConfig.read(reader, pulumi.get_stack()))
    else:
        # Imported only here: the AWS SDKs take seconds to load, and the local stack needs none.
        import bootstrap.aws_stack

        bootstrap.aws_stack.main(reader, config)
except stack_config.ConfigError as exc:
    raise pulumi.RunError(str(exc)) from None
