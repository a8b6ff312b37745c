"""AWS failures as :class:`ProviderError`, so the reconciler turns them into conditions; bad input
is not retried until the claim changes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from provisioner.providers.base import ProviderError

# Bad input: retrying the same request cannot succeed until the claim changes.
_NOT_RETRYABLE = {
    "InvalidParameterException",
    "InvalidRequestException",
    "UnsupportedAvailabilityZoneException",
}


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


@contextlib.contextmanager
def as_provider_errors(name: str, region: str) -> Iterator[None]:
    """AWS failures as :class:`ProviderError`, so the reconciler turns them into conditions."""
    try:
        yield
    except ClientError as exc:
        error = code(exc) or "AwsError"
        raise ProviderError(
            error.removesuffix("Exception"),
            f"{exc.operation_name} for EKS cluster {name} in {region}: {message(exc)}",
            retryable=error not in _NOT_RETRYABLE,
        ) from exc
    except ParamValidationError as exc:
        # botocore checks values against the API model before sending (e.g. a node count below 1)
        raise ProviderError(
            "InvalidParameter", f"EKS cluster {name} in {region}: {exc}", retryable=False
        ) from exc
    except NoCredentialsError as exc:
        raise ProviderError(
            "NoCredentials",
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "for the provisioner",
        ) from exc
    except BotoCoreError as exc:
        raise ProviderError("AwsRequestFailed", f"EKS cluster {name} in {region}: {exc}") from exc
