"""``spec.parameters.settings`` of an aws claim, checked: every problem named with what to set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.providers.base import ProviderError

_SETTINGS_HELP = {
    "roleArn": "the ARN of the IAM role the EKS control plane assumes (arn:aws:iam::ACCOUNT:role/NAME)",
    "nodeRoleArn": "the ARN of the IAM role the worker nodes assume (arn:aws:iam::ACCOUNT:role/NAME)",
    "subnetIds": "a list of subnet IDs, in at least two availability zones",
    "securityGroupIds": "a list of security group IDs for the control plane ([] for only the one EKS makes)",
}


@dataclass(frozen=True)
class EksSettings:
    """``spec.parameters.settings`` of an aws claim: what EKS needs that a composition cannot guess."""

    role_arn: str
    node_role_arn: str
    subnet_ids: list[str]
    security_group_ids: list[str]

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> EksSettings:
        problems: list[str] = []

        def text(key: str) -> str:
            value = settings.get(key)
            if isinstance(value, str) and value:
                return value
            problems.append(_settings_problem(key, value))
            return ""

        def strings(key: str, *, may_be_empty: bool) -> list[str]:
            value = settings.get(key)
            if (
                isinstance(value, list)
                and all(isinstance(item, str) and item for item in value)
                and (value or may_be_empty)
            ):
                return list(value)
            problems.append(_settings_problem(key, value))
            return []

        parsed = cls(
            role_arn=text("roleArn"),
            node_role_arn=text("nodeRoleArn"),
            subnet_ids=strings("subnetIds", may_be_empty=False),
            security_group_ids=strings("securityGroupIds", may_be_empty=True),
        )
        if problems:
            raise ProviderError("InvalidSettings", "; ".join(problems), retryable=False)
        return parsed


def _settings_problem(key: str, value: Any) -> str:
    found = "it is missing" if value is None else f"it is {value!r}"
    return f"spec.parameters.settings.{key}: set {key} to {_SETTINGS_HELP[key]} ({found})"
