"""A local worker's tuning is chosen by name; an unknown name is refused naming the choices."""

from __future__ import annotations

import pytest

from localinfra import tuning


def test_tunings_are_chosen_by_name() -> None:
    assert tuning.by_name("tuned") is tuning.TUNED
    assert tuning.by_name("untuned") is tuning.UNTUNED


def test_an_unknown_tuning_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown worker tuning 'dense': choose one of tuned, untuned"):
        tuning.by_name("dense")


def test_untuned_adds_nothing_to_any_process() -> None:
    untuned = tuning.UNTUNED
    assert untuned.argocd_controller_args == untuned.argocd_repo_server_args == ()
    assert not (
        untuned.apiserver_env or untuned.controller_manager_env or untuned.argocd_env or untuned.agent_env
    )


def test_tuned_collects_every_go_process_at_half_its_heap_growth() -> None:
    for env in (tuning.TUNED.apiserver_env, tuning.TUNED.controller_manager_env, tuning.TUNED.argocd_env):
        assert env == {"GOGC": "50"}
