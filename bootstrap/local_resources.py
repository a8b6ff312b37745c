"""Pulumi dynamic resources for the parts of the local management cluster (``local_components``).

One provider serves every part: the part's name is the provider's only state, so what Pulumi
pickles into the stack's state is small and the code runs from the installed package. The
processes outlive ``pulumi up``; ``read`` (``pulumi refresh``) and ``diff`` (every ``pulumi up``)
check that they are alive, so a part that died shows as drift and the next ``up`` restarts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic

from bootstrap import local_components

#: Marks the outputs of a part that was alive when last looked at.
RUNNING = "running"


def _inputs(props: dict[str, Any]) -> dict[str, Any]:
    # Pulumi keeps the pickled provider in the properties, under "__provider".
    return {k: v for k, v in props.items() if not k.startswith("__")}


class LocalPartProvider(dynamic.ResourceProvider):
    def __init__(self, part: str) -> None:
        self.part = part

    @property
    def component(self) -> local_components.Component:
        return local_components.COMPONENTS[self.part]

    def _start(self, props: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
        inputs = _inputs(props)
        outputs = self.component.start(Path(inputs["environment"]), inputs, previous)
        return {**inputs, **outputs, RUNNING: True}

    def _alive(self, props: dict[str, Any]) -> bool:
        return self.component.running(Path(props["environment"]), _inputs(props))

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=self.part, outs=self._start(props, {}))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_=id_, outs={**props, RUNNING: self._alive(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # Output-only properties are given as None (see LocalPart); they are not inputs.
        changed = [k for k, v in _inputs(news).items() if v is not None and olds.get(k) != v]
        if not changed and not (olds.get(RUNNING) and self._alive(olds)):
            changed = [RUNNING]
        # A part moving to another folder is a new part; the old one stops first (ports are fixed).
        replaces = [k for k in changed if k == "environment"]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        self.component.stop(Path(olds["environment"]))
        return dynamic.UpdateResult(outs=self._start(news, olds))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self.component.stop(Path(props["environment"]))


class LocalPart(dynamic.Resource):
    """A part of the local management cluster, with the outputs ``local_components`` gives it."""

    running: pulumi.Output[bool]

    def __init__(
        self,
        part: str,
        environment: pulumi.Input[str],
        inputs: Mapping[str, pulumi.Input[Any]] | None = None,
        outputs: tuple[str, ...] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # A dynamic resource exposes as outputs exactly the properties it was given: None for
        # those only the provider fills in.
        props: dict[str, Any] = {"environment": environment, **(inputs or {}), RUNNING: None}
        props.update({name: None for name in outputs})
        super().__init__(LocalPartProvider(part), part, props, opts)

    def out(self, name: str) -> pulumi.Output[Any]:
        value: pulumi.Output[Any] = getattr(self, name)
        return value
