"""The agent loop over an in-memory cluster: what it applies and what it reports.

Cases: on start it asks the server for a resync naming the versions it holds; a spec event is
applied once and reported once; the same event delivered again changes nothing and reports
nothing; an older version is ignored; a delete removes the objects and reports Deleted; an event
for another cluster is refused; a status only goes out again when it changed; a refresh builds a
status only for bundles whose objects changed (a new resourceVersion, or gone).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from maestro.agent import bundle_status
from maestro.agent.agent_loop import Agent
from maestro.agent.memory import MemoryApplier
from maestro.api import bundle_events, bundles, events
from maestro.transport import binding, cloudevents
from maestro.transport.messages import Incoming, Outgoing

STATUS_TOPIC = "t.status"


class Sent:
    def __init__(self) -> None:
        self.messages: list[Outgoing] = []

    async def __call__(self, items: Sequence[Outgoing]) -> None:
        self.messages.extend(items)

    def types(self) -> list[str]:
        return [
            binding.decode(m.headers)[0]["type"].rsplit(".", 2)[-2]
            + "."
            + binding.decode(m.headers)[0]["type"].rsplit(".", 1)[-1]
            for m in self.messages
        ]

    def statuses(self) -> list[dict[str, Any]]:
        return [json.loads(m.value or b"{}") for m in self.messages if m.value and b"conditions" in m.value]


def spec_message(bundle: bundles.ResourceBundle, offset: int, action: events.Action) -> Incoming:
    out = cloudevents.to_message(
        bundle_events.spec_event(bundle, action), topic="t.spec", key=bundle.consumer
    )
    attrs, content_type = binding.decode(out.headers)
    return Incoming("t.spec", 0, offset, out.key, attrs, content_type, out.value)


def configmap_bundle(
    rid: uuid.UUID, version: int, value: str, consumer: str = "c1"
) -> bundles.ResourceBundle:
    return bundles.ResourceBundle(
        id=rid,
        consumer=consumer,
        source="hub",
        version=version,
        manifests=[
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "default"},
                "data": {"v": value},
            }
        ],
        delete_option={"propagationPolicy": "Foreground"},
    )


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


async def test_apply_once_report_once_and_ignore_repeats_and_old_versions() -> None:
    sent = Sent()
    applier = MemoryApplier("c1", argocd_sync_delay=0)
    agent = Agent(applier, sent, status_topic=STATUS_TOPIC)
    await agent.start()
    assert sent.types() == ["spec.resync_request"]

    rid = uuid.uuid4()
    v1 = spec_message(configmap_bundle(rid, 1, "a"), 0, events.Action.CREATE_REQUEST)
    await agent.handle([v1])
    await agent.handle([v1])
    assert agent.stats.applied == 1 and agent.stats.skipped == 1
    assert len(sent.statuses()) == 1 and conditions(sent.statuses()[0])["Applied"] == "True"

    await agent.handle([spec_message(configmap_bundle(rid, 2, "b"), 1, events.Action.UPDATE_REQUEST)])
    await agent.handle([spec_message(configmap_bundle(rid, 1, "a"), 2, events.Action.UPDATE_REQUEST)])
    assert agent.stats.applied == 2
    live = await applier.observe(str(rid))
    assert live[0] is not None and live[0]["data"] == {"v": "b"}

    before = len(sent.messages)
    await agent.refresh()
    assert len(sent.messages) == before, "an unchanged status must not be published again"


async def test_delete_reports_deleted_and_foreign_events_are_refused() -> None:
    sent = Sent()
    applier = MemoryApplier("c1", argocd_sync_delay=0)
    agent = Agent(applier, sent, status_topic=STATUS_TOPIC)
    await agent.start()
    rid = uuid.uuid4()
    await agent.handle([spec_message(configmap_bundle(rid, 1, "a"), 0, events.Action.CREATE_REQUEST)])
    await agent.handle(
        [spec_message(configmap_bundle(uuid.uuid4(), 1, "x", consumer="c2"), 1, events.Action.CREATE_REQUEST)]
    )
    assert agent.stats.rejected == 1 and agent.stats.applied == 1

    gone = configmap_bundle(rid, 1, "a")
    deleting = bundles.ResourceBundle(
        id=gone.id,
        consumer="c1",
        source="hub",
        version=1,
        manifests=[],
        deleted_at=datetime.now(UTC),
    )
    await agent.handle([spec_message(deleting, 2, events.Action.DELETE_REQUEST)])
    assert conditions(sent.statuses()[-1])["Deleted"] == "True"
    assert applier.record(str(rid)) is None


def feedback_bundle(rid: uuid.UUID, name: str) -> bundles.ResourceBundle:
    bundle = configmap_bundle(rid, 1, "a")
    manifest = {**bundle.manifests[0], "metadata": {"name": name, "namespace": "default"}}
    rule = {"type": "JSONPaths", "jsonPaths": [{"name": "v", "path": ".data.v"}]}
    config = {
        "resourceIdentifier": {"group": "", "resource": "configmaps", "name": name, "namespace": "default"},
        "feedbackRules": [rule],
    }
    return dataclasses.replace(bundle, manifests=[manifest], manifest_configs=[config])


def feedback(status: dict[str, Any]) -> str:
    values = status["resourceStatus"][0]["statusFeedback"]["values"]
    return str(values[0]["fieldValue"]["string"])


async def test_the_watcher_follows_the_records_and_only_changed_bundles_are_read_again() -> None:
    sent = Sent()
    applier = MemoryApplier("c1", argocd_sync_delay=0)
    followed: list[set[str]] = []
    agent = Agent(
        applier,
        sent,
        status_topic=STATUS_TOPIC,
        follow=lambda records: followed.append({r.resource_id for r in records}),
    )
    await agent.start()
    assert followed == [set()]
    one, two = uuid.uuid4(), uuid.uuid4()
    await agent.handle(
        [
            spec_message(feedback_bundle(one, "cm-one"), 0, events.Action.CREATE_REQUEST),
            spec_message(feedback_bundle(two, "cm-two"), 1, events.Action.CREATE_REQUEST),
        ]
    )
    assert followed[-1] == {str(one), str(two)}
    before = len(sent.statuses())

    # Both objects are edited in the cluster; a watch saw only the first edit so far.
    for name in ("cm-one", "cm-two"):
        live = applier.backend.objects[("", "configmaps", "default", name)]
        live["data"]["v"] = "edited"
        live["metadata"]["resourceVersion"] += "-edited"
    changes = asyncio.create_task(agent.changes_forever(settle=0.01))
    try:
        agent.mark_changed({str(one)})
        for _ in range(100):
            if len(sent.statuses()) > before:
                break
            await asyncio.sleep(0.01)
    finally:
        changes.cancel()
    reports = sent.statuses()[before:]
    assert len(reports) == 1
    assert feedback(reports[0]) == "edited"
    attributes, _ = binding.decode(sent.messages[-1].headers)
    assert attributes["resourceid"] == str(one)


async def test_a_refresh_builds_status_only_for_objects_whose_resource_version_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = Sent()
    applier = MemoryApplier("c1", argocd_sync_delay=0)
    agent = Agent(applier, sent, status_topic=STATUS_TOPIC)
    await agent.start()
    one, two = uuid.uuid4(), uuid.uuid4()
    await agent.handle(
        [
            spec_message(feedback_bundle(one, "cm-one"), 0, events.Action.CREATE_REQUEST),
            spec_message(feedback_bundle(two, "cm-two"), 1, events.Action.CREATE_REQUEST),
        ]
    )
    await agent.refresh()
    built: list[int] = []
    real = bundle_status.build_status

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle_status, "build_status", counting)
    before = len(sent.messages)
    await agent.refresh()
    assert (built, len(sent.messages)) == ([], before), "unchanged objects: no status built, none sent"

    live = applier.backend.objects[("", "configmaps", "default", "cm-two")]
    live["data"]["v"] = "edited"
    live["metadata"]["resourceVersion"] += "-edited"
    await agent.refresh()
    assert len(built) == 1
    assert [feedback(s) for s in sent.statuses()[-1:]] == ["edited"]
    del applier.backend.objects[("", "configmaps", "default", "cm-one")]
    await agent.refresh()
    assert len(built) == 2, "an object gone is a change too"
    assert conditions(sent.statuses()[-1])["Available"] == "False"
