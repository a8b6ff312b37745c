"""The provisioner gives its clusters' agents the Maestro server's topic prefix by default.

Case: the default of ``fleetplane provisioner run --topic-prefix`` and of ``ProvisionerSettings``
is the server's (``fleetplane maestro server``): with different defaults, agents of provisioned
clusters published status to topics no server created, and nothing reached the hub.
"""

from __future__ import annotations

import inspect

from fleetplane import maestro_cli, provisioner_cli
from maestro.client import Credentials
from maestro.transport import layout
from provisioner import operator


def test_provisioner_and_server_default_to_the_same_prefix() -> None:
    provisioner_default = inspect.signature(provisioner_cli.run).parameters["topic_prefix"].default.default
    server_default = inspect.signature(maestro_cli.server).parameters["topic_prefix"].default.default
    settings = operator.ProvisionerSettings(
        kubeconfig=None,
        maestro="127.0.0.1:8090",
        kafka="127.0.0.1:9092",
        maestro_credentials=Credentials.insecure(),
    )
    assert provisioner_default == server_default == settings.topic_prefix == layout.DEFAULT.prefix
