"""Pipeline Compositions: steps checked with the field and the fix, run in order, results and
conditions, fatal results stopping everything, functions from entry points, frozen revisions."""

from __future__ import annotations

import asyncio
import pathlib
import sys
import textwrap
import threading
from typing import Any

import pytest

from provisioner import compositions, functions, pipeline
from provisioner.composed import ComposedResource, RenderError
from provisioner.functions import installed, wire
from tests.unit.provisioner import builders

PROVIDER = ComposedResource(
    "cluster",
    "provider",
    {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "ClusterConfig",
        "spec": {"provider": "local", "nodeCount": 2},
    },
)


def namespace(name: str) -> ComposedResource:
    return ComposedResource(
        name, "workload", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


def step(name: str, function: str, **given: Any) -> dict[str, Any]:
    return {"step": name, "functionRef": {"name": function}, "input": given}


async def run(found: dict[str, functions.Function], *listed: dict[str, Any]) -> pipeline.Outcome:
    spec = {"mode": "Pipeline", "pipeline": list(listed)}
    return await pipeline.run(
        pipeline.steps(spec),
        installed.Installed(found),
        values={},
        composite={"metadata": {"name": "dev", "namespace": "team-b"}},
        observed={"cluster": {"name": "cluster", "ready": True}},
    )


def compose(request: functions.Request) -> functions.Response:
    return functions.Response(desired=[PROVIDER], results=[functions.Result("Normal", "composed")])


@pytest.mark.parametrize(
    ("spec", "field", "fix"),
    [
        ({"mode": "Pipeline"}, "spec.pipeline", "list the steps"),
        (
            {"mode": "Pipeline", "pipeline": [{"functionRef": {"name": "x"}}]},
            "spec.pipeline[0].step",
            "name the step",
        ),
        (
            {"mode": "Pipeline", "pipeline": [{"step": "a"}]},
            "spec.pipeline[0].functionRef.name",
            "name a function",
        ),
        (
            {"mode": "Pipeline", "pipeline": [step("a", "x"), step("a", "y")]},
            "spec.pipeline[1].step",
            "name each step once",
        ),
        (
            {"mode": "Pipeline", "pipeline": [{**step("a", "x"), "code": "import os"}]},
            "spec.pipeline[0].code",
            "a step has only",
        ),
        (
            {"mode": "Pipeline", "pipeline": [step("a", "x")], "template": {"inline": "x"}},
            "spec.template",
            "move it into a step",
        ),
        ({"mode": "Functions"}, "spec.mode", "use Pipeline"),
    ],
    ids=[
        "no steps",
        "no step name",
        "no function",
        "a step named twice",
        "code in a step",
        "a template beside",
        "a bad mode",
    ],
)
def test_a_bad_pipeline_names_the_field_and_the_fix(spec: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(compositions.CompositionError) as caught:
        pipeline.steps(spec)
    assert caught.value.field == field
    assert fix in caught.value.fix


def test_a_function_not_installed_is_named_with_what_is() -> None:
    spec = {
        "mode": "Pipeline",
        "pipeline": [step("render", "fleetplane-template"), step("policy", "size-policy")],
    }
    with pytest.raises(compositions.CompositionError) as caught:
        pipeline.check_installed(pipeline.steps(spec), installed.installed(), spec)
    assert caught.value.field == "spec.pipeline[1].functionRef.name"
    assert "'size-policy' is not installed" in str(caught.value)
    assert "fleetplane-template" in caught.value.fix and "--function NAME=ADDRESS" in caught.value.fix


def test_a_template_composition_is_one_template_step() -> None:
    listed = pipeline.steps({"template": {"inline": "x"}})
    assert listed == [step("template", "fleetplane-template", template={"inline": "x"})]


def test_steps_run_in_order_each_seeing_the_state_before_it() -> None:
    seen: list[functions.Request] = []

    def add(request: functions.Request) -> functions.Response:
        seen.append(request)
        return functions.Response(
            desired=[*request.desired, namespace(request.input["namespace"])],
            context={**request.context, request.step: True},
        )

    outcome = asyncio.run(
        run(
            {"compose": compose, "add": add},
            step("a", "compose"),
            step("b", "add", namespace="one"),
            step("c", "add", namespace="two"),
        )
    )
    assert [r.name for r in outcome.resources] == ["cluster", "one", "two"]
    assert [r.index for r in outcome.resources] == [0, 1, 2]
    assert [r.name for r in seen[1].desired] == ["cluster", "one"]
    assert seen[1].context == {"b": True}
    assert seen[0].observed == {"cluster": {"name": "cluster", "ready": True}}
    assert pipeline.conditions(outcome) == [
        {"type": "Pipeline", "status": "True", "reason": "Normal", "message": "a: composed"}
    ]


def test_a_fatal_result_stops_the_pipeline_and_says_which_step() -> None:
    called: list[str] = []

    def refuse(request: functions.Request) -> functions.Response:
        return functions.Response(
            results=[functions.Result("Fatal", "nodeCount 2 is above the limit of 1", "TooBig")]
        )

    def later(request: functions.Request) -> functions.Response:
        called.append(request.step)
        return functions.Response()

    with pytest.raises(pipeline.FatalResult) as caught:
        asyncio.run(
            run(
                {"compose": compose, "refuse": refuse, "later": later},
                step("a", "compose"),
                step("b", "refuse"),
                step("c", "later"),
            )
        )
    assert called == []
    assert caught.value.reason == "FatalResult"
    assert str(caught.value) == "pipeline step 'b' (function 'refuse'): nodeCount 2 is above the limit of 1"
    assert caught.value.conditions[0] == {
        "type": "Pipeline",
        "status": "False",
        "reason": "Fatal",
        "message": "b: nodeCount 2 is above the limit of 1",
    }


def test_warnings_and_a_steps_own_conditions_reach_the_composite() -> None:
    def warn(request: functions.Request) -> functions.Response:
        return functions.Response(
            results=[functions.Result("Normal", "fine"), functions.Result("Warning", "at the limit")],
            conditions=[functions.Condition("SizeChecked", "True", "WithinLimit", "2/2")],
        )

    outcome = asyncio.run(run({"compose": compose, "warn": warn}, step("a", "compose"), step("b", "warn")))
    assert pipeline.conditions(outcome) == [
        {"type": "Pipeline", "status": "False", "reason": "Warning", "message": "b: at the limit"},
        {"type": "SizeChecked", "status": "True", "reason": "WithinLimit", "message": "2/2"},
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        ("not a response", "returned str, not a functions.Response"),
        (functions.Response(conditions=[functions.Condition("Ready", "True", "x")]), "set condition 'Ready'"),
        (functions.Response(desired=[namespace("BAD_NAME")]), "is not a DNS-1123 name"),
    ],
    ids=["raises", "returns nonsense", "sets Ready", "composes a bad name"],
)
def test_a_failing_step_is_named(answer: Any, message: str) -> None:
    def bad(request: functions.Request) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(RenderError) as caught:
        asyncio.run(run({"compose": compose, "bad": bad}, step("a", "compose"), step("b", "bad")))
    assert "'b'" in str(caught.value) and message in str(caught.value)


def test_the_pipeline_must_compose_the_provider_first() -> None:
    def only_namespace(request: functions.Request) -> functions.Response:
        return functions.Response(desired=[namespace("x")])

    with pytest.raises(RenderError, match="renders no provider resource"):
        asyncio.run(run({"ns": only_namespace}, step("a", "ns")))


def test_a_plain_function_runs_off_the_event_loop_and_an_async_one_on_it() -> None:
    threads: dict[str, int] = {}

    def plain(request: functions.Request) -> functions.Response:
        threads["plain"] = threading.get_ident()
        return functions.Response(desired=[PROVIDER])

    async def coroutine(request: functions.Request) -> functions.Response:
        threads["async"] = threading.get_ident()
        return functions.Response()

    async def main() -> int:
        await run({"plain": plain, "async": coroutine}, step("a", "plain"), step("b", "async"))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads["async"] == loop_thread != threads["plain"]


def test_functions_come_from_entry_points(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team_functions.py").write_text(
        textwrap.dedent(
            """
            from provisioner import functions

            def label(request):
                return functions.Response(results=[functions.Result("Normal", "labelled")])

            NOT_CALLABLE = 3
            """
        )
    )
    info = tmp_path / "team_functions-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-functions\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fleetplane.functions]\nteam-label = team_functions:label\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = installed.installed()
    assert found.names() == ["fleetplane-template", "team-label"]
    outcome = asyncio.run(
        run(
            {"compose": compose, "team-label": found.get("team-label")},
            step("a", "compose"),
            step("b", "team-label"),
        )
    )  # type: ignore[dict-item]
    assert outcome.results[-1].result.message == "labelled"

    (info / "entry_points.txt").write_text("[fleetplane.functions]\nbroken = team_functions:NOT_CALLABLE\n")
    with pytest.raises(functions.FunctionError, match=r"declared by team-functions.*not a callable"):
        installed.installed()
    sys.modules.pop("team_functions", None)


def test_a_server_may_not_take_an_installed_name() -> None:
    with pytest.raises(functions.FunctionError, match="'fleetplane-template' takes the name"):
        installed.installed({"fleetplane-template": compose})


def test_a_revision_freezes_the_pipeline_with_its_templates(tmp_path: pathlib.Path) -> None:
    (tmp_path / "worker-cluster").mkdir()
    template = tmp_path / "worker-cluster" / "template.yaml.j2"
    template.write_text("one")
    composition = builders.pipeline_composition(step("policy", "size-policy", maxNodeCount=3))
    composition["metadata"]["uid"] = "u1"
    frozen = pipeline.freeze(composition, tmp_path)
    assert frozen is not None
    assert frozen[0]["input"]["template"] == {
        "inline": "one",
        "source": "compositions/worker-cluster/template.yaml.j2",
    }
    assert frozen[1] == step("policy", "size-policy", maxNodeCount=3)
    first = compositions.next_revision(composition, "", [], frozen)
    assert first is not None
    assert first["spec"]["mode"] == "Pipeline" and "template" not in first["spec"]
    assert (
        compositions.next_revision(composition, "", [first], pipeline.freeze(composition, tmp_path)) is None
    )
    template.write_text("two")  # editing the file cuts a new revision
    second = compositions.next_revision(composition, "", [first], pipeline.freeze(composition, tmp_path))
    assert second is not None and second["spec"]["revision"] == 2
    # a Template composition's revisions are as they were
    assert pipeline.freeze(builders.composition(), tmp_path) is None


def test_a_step_template_that_leaves_the_folder_names_the_step(tmp_path: pathlib.Path) -> None:
    composition = builders.pipeline_composition()
    composition["spec"]["pipeline"][0]["input"]["template"] = {"path": "../secrets"}
    with pytest.raises(Exception, match=r"spec\.pipeline\[0\]\.input\.template\.path"):
        pipeline.freeze(composition, tmp_path)


def test_the_wire_carries_targets_as_annotations_and_whole_numbers_back() -> None:
    request = functions.Request(
        step="policy",
        input={"maxNodeCount": 3},
        composite={
            "apiVersion": "platform.fleetplane.io/v1alpha1",
            "kind": "TeamCluster",
            "metadata": {"name": "dev"},
        },
        observed={},
        desired=[PROVIDER, ComposedResource("ns", "workload", namespace("ns").object, wait_ready=True)],
        context={"k": "v"},
    )
    message = wire.to_message(request)
    sent = message.desired.resources["ns"].resource
    assert sent["metadata"]["annotations"][wire.ANNOTATION_TARGET] == "workload"
    assert sent["metadata"]["annotations"][wire.ANNOTATION_WAIT_READY] == "true"
    reply = wire.RunFunctionResponse()
    reply.desired.CopyFrom(message.desired)
    reply.results.add(severity=2, message="careful")
    reply.conditions.add(type="SizeChecked", status=2, reason="WithinLimit")
    back = wire.from_message(wire.RunFunctionResponse.FromString(reply.SerializeToString()), request)
    assert back.desired == request.desired
    assert back.desired is not None and back.desired[0].object["spec"]["nodeCount"] == 2
    assert back.results == [functions.Result("Warning", "careful")]
    assert back.conditions == [functions.Condition("SizeChecked", "True", "WithinLimit")]

    del reply.desired.resources["ns"].resource["metadata"]["annotations"][wire.ANNOTATION_TARGET]
    with pytest.raises(functions.FunctionError, match=r"fleetplane\.io/target"):
        wire.from_message(reply, request)


def test_function_server_options_are_checked() -> None:
    assert list(wire.parse_servers(["size-policy=127.0.0.1:9443"])) == ["size-policy"]
    with pytest.raises(functions.FunctionError, match="is not NAME=HOST:PORT"):
        wire.parse_servers(["size-policy"])


def test_an_object_too_deep_for_protobuf_is_sent_as_its_outline_and_kept() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(40):
        deep = {"properties": deep}
    crd = ComposedResource(
        "crd",
        "workload",
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "applications.argoproj.io"},
            "spec": deep,
        },
    )
    request = functions.Request("policy", {}, {"metadata": {"name": "dev"}}, {}, [PROVIDER, crd], {})
    message = wire.to_message(request)
    # what a decoder with upb's default depth limit reads back
    wire.RunFunctionRequest.FromString(message.SerializeToString())
    outline = message.desired.resources["crd"].resource
    assert "spec" not in outline
    assert outline["metadata"]["annotations"][wire.ANNOTATION_WITHHELD] == "true"
    reply = wire.RunFunctionResponse()
    reply.desired.CopyFrom(message.desired)
    back = wire.from_message(reply, request)
    assert back.desired == [PROVIDER, crd]
