"""Each module of the provisioner's e2e tests runs on a platform of its own (``kit.platform``)."""

from tests.e2e.test_provisioner.kit import platform, provisioner_args

__all__ = ["platform", "provisioner_args"]
