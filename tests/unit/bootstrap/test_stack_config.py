"""``pulumi config`` values are checked as they are read; a wrong one names its key and the fix.

Cases: defaults when unset; integers in and out of range and not integers; ports (0 = a free one,
privileged ones refused); choices; patterns; pinned versions; the local stack's whole config.
"""

from __future__ import annotations

import pytest

from bootstrap import local_stack
from bootstrap.stack_config import ConfigError, Reader
from localinfra import paths, versions


def reader(**values: str) -> Reader:
    return Reader(values.get)


def test_unset_values_take_their_defaults() -> None:
    r = reader()
    assert r.integer("n", 2, 1, 8) == 2
    assert r.port("p") == 0
    assert r.choice("c", "local", ("local", "aws")) == "local"
    assert r.pinned("v", "1.2.3") == "1.2.3"


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            lambda r: r.integer("n", 2, 1, 8),
            "config fleetplane:n = '0' is not valid: expected an integer from 1 to 8",
        ),
        (lambda r: r.integer("many", 2, 1, 8), "config fleetplane:many = 'lots' is not valid"),
        (lambda r: r.port("low"), "0 (a free port) or a port from 1024 to 65535"),
        (lambda r: r.port("high"), "an integer from 0 to 65535"),
        (lambda r: r.choice("cloud", "local", ("local", "aws")), "expected one of local, aws"),
        (lambda r: r.string("name", "ok", r"[a-z]+", "lower-case letters"), "expected lower-case letters"),
        (
            lambda r: r.pinned("k8s", "v1.37.0"),
            "expected v1.37.0 (the version built into ~/.cache/fleetplane)",
        ),
    ],
    ids=[
        "out-of-range",
        "not-an-integer",
        "privileged-port",
        "port-too-high",
        "unknown-choice",
        "pattern",
        "pin",
    ],
)
def test_a_wrong_value_names_its_key_and_the_fix(read: object, message: str) -> None:
    r = reader(n="0", many="lots", low="80", high="70000", cloud="gcp", name="Bad Name", k8s="v1.30.0")
    with pytest.raises(ConfigError) as err:
        read(r)  # type: ignore[operator]
    assert message in str(err.value)
    assert "fix: pulumi config set fleetplane:" in str(err.value)


def test_the_local_stack_config() -> None:
    config = local_stack.LocalConfig.read(reader(demoClusters="3", maestroPort="18090"), "dev")
    assert config == local_stack.LocalConfig(3, 18090, str(paths.envs_dir() / "pulumi-dev"))
    assert local_stack.LocalConfig.read(reader(kafkaBrokers="3"), "dev").kafka_brokers == 3
    with pytest.raises(ConfigError, match="fleetplane:kafkaBrokers"):
        local_stack.LocalConfig.read(reader(kafkaBrokers="2"), "dev")
    named = local_stack.LocalConfig.read(
        reader(environment="mine", kubernetesVersion=versions.KUBERNETES), "dev"
    )
    assert named.environment == str(paths.envs_dir() / "mine")
    with pytest.raises(ConfigError, match="fleetplane:argocdVersion"):
        local_stack.LocalConfig.read(reader(argocdVersion="v2.0.0"), "dev")
    with pytest.raises(ConfigError, match="fleetplane:environment"):
        local_stack.LocalConfig.read(reader(environment="../escape"), "dev")
