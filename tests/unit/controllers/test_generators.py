"""Generators produce the parameter sets Argo CD users expect, and fail loudly otherwise.

Cases: list (elements, values map, elementsYaml, goTemplate keeps types, non-string values without
goTemplate), clusters (parameters in both shapes, selectors, templated values, in-cluster for no selector,
flatList rejected), clusterDecisionResource (OCM PlacementDecision by labelSelector and by name,
default statusListKey, unmatched decisions reported, ConfigMap problems), matrix (product,
second child using the first's parameters, conflicts, goTemplate precedence, nesting), merge
(override by mergeKeys, uniqueness, goTemplate deep merge, top-level keys only), post-selectors,
unknown/unsupported generators and fields, several top-level generators, referenced_config_maps.
"""

from __future__ import annotations

from typing import Any

import pytest

from controllers.propagation import errors, generators, templating

from .builders import fleet

FAST = templating.Mode()
GO = templating.Mode(go_template=True)

INVENTORY = fleet(("c1", {"env": "prod", "region": "eu"}), ("c2", {"env": "dev"}), ("My_C3", {"env": "prod"}))
TYPE_LABEL = {"argocd.argoproj.io/secret-type": "cluster"}
#: a selector every registered cluster matches (an empty one adds the hub's in-cluster too)
EVERY_ENV = {"selector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}}

PLACEMENT_CM = {
    "apiVersion": "cluster.open-cluster-management.io/v1beta1",
    "kind": "placementdecisions",
    "statusListKey": "decisions",
    "matchKey": "clusterName",
}


def placement_decision(name: str, placement: str, *clusters: str) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.open-cluster-management.io/v1beta1",
        "kind": "PlacementDecision",
        "metadata": {"name": name, "labels": {"cluster.open-cluster-management.io/placement": placement}},
        "status": {"decisions": [{"clusterName": c, "reason": ""} for c in clusters]},
    }


INPUTS = generators.GeneratorInputs(
    INVENTORY,
    config_maps={"ocm-placement": PLACEMENT_CM},
    decision_resources={
        (PLACEMENT_CM["apiVersion"], PLACEMENT_CM["kind"]): [
            placement_decision("p1-decision-1", "p1", "c1", "ghost"),
            placement_decision("p2-decision-1", "p2", "c2"),
        ]
    },
)


def run(generator: dict[str, Any], mode: templating.Mode = FAST) -> generators.Generation:
    return generators.generate_one(generator, INPUTS, mode, path="spec.generators[0]")


# --- list ------------------------------------------------------------------------------------------

LISTS = [
    (
        "strings and values map",
        {"list": {"elements": [{"cluster": "c1", "url": "https://c1", "values": {"rev": "main"}}]}},
        FAST,
        [{"cluster": "c1", "url": "https://c1", "values.rev": "main"}],
    ),
    (
        "goTemplate keeps nesting and types",
        {"list": {"elements": [{"cluster": "c1", "replicas": 3, "values": {"rev": "main"}}]}},
        GO,
        [{"cluster": "c1", "replicas": 3, "values": {"rev": "main"}}],
    ),
    (
        "elementsYaml appended after elements",
        {"list": {"elements": [{"cluster": "a"}], "elementsYaml": "- cluster: b\n- cluster: c\n"}},
        FAST,
        [{"cluster": "a"}, {"cluster": "b"}, {"cluster": "c"}],
    ),
    ("empty", {"list": {"elements": []}}, FAST, []),
]


@pytest.mark.parametrize(("generator", "mode", "want"), [c[1:] for c in LISTS], ids=[c[0] for c in LISTS])
def test_list(generator: dict[str, Any], mode: templating.Mode, want: list[dict[str, Any]]) -> None:
    assert run(generator, mode).params == want


LIST_ERRORS = [
    (
        "number without goTemplate",
        {"list": {"elements": [{"replicas": 3}]}},
        "spec.generators[0].list.elements[0].replicas",
        "set goTemplate: true",
    ),
    (
        "element not a map",
        {"list": {"elements": ["c1"]}},
        "spec.generators[0].list.elements[0]",
        "must be a map",
    ),
    (
        "elementsYaml not a list",
        {"list": {"elementsYaml": "cluster: a"}},
        "spec.generators[0].list.elementsYaml",
        "YAML list",
    ),
    (
        "elementsYaml invalid",
        {"list": {"elementsYaml": "- [unclosed"}},
        "spec.generators[0].list.elementsYaml",
        "not valid YAML",
    ),
]


@pytest.mark.parametrize(
    ("generator", "path", "words"), [c[1:] for c in LIST_ERRORS], ids=[c[0] for c in LIST_ERRORS]
)
def test_list_errors(generator: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(errors.GeneratorError) as caught:
        run(generator)
    assert caught.value.path == path
    assert words in caught.value.message


# --- clusters --------------------------------------------------------------------------------------


def test_clusters_fasttemplate_parameters() -> None:
    params = run({"clusters": {"selector": {"matchLabels": {"region": "eu"}}}}).params
    assert params == [
        {
            "name": "c1",
            "nameNormalized": "c1",
            "server": "https://c1.example:6443",
            "project": "",
            "metadata.labels.argocd.argoproj.io/secret-type": "cluster",
            "metadata.labels.env": "prod",
            "metadata.labels.region": "eu",
        }
    ]


def test_clusters_go_template_parameters_are_nested() -> None:
    params = run(
        {"clusters": {"selector": {"matchLabels": {"region": "eu"}}, "values": {"rev": "main"}}}, GO
    ).params
    assert params == [
        {
            "name": "c1",
            "nameNormalized": "c1",
            "server": "https://c1.example:6443",
            "project": "",
            "metadata": {"labels": {**TYPE_LABEL, "env": "prod", "region": "eu"}},
            "values": {"rev": "main"},
        }
    ]


CLUSTER_SELECTION = [
    ("no selector: every registered cluster, then in-cluster", {}, ["c1", "c2", "My_C3", "in-cluster"]),
    ("matchLabels", {"selector": {"matchLabels": {"env": "prod"}}}, ["c1", "My_C3"]),
    (
        "NotIn",
        {"selector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}},
        ["c2"],
    ),
    (
        "DoesNotExist",
        {"selector": {"matchExpressions": [{"key": "region", "operator": "DoesNotExist"}]}},
        ["c2", "My_C3"],
    ),
    ("nothing matches", {"selector": {"matchLabels": {"env": "qa"}}}, []),
]


@pytest.mark.parametrize(
    ("body", "names"), [c[1:] for c in CLUSTER_SELECTION], ids=[c[0] for c in CLUSTER_SELECTION]
)
def test_clusters_selection(body: dict[str, Any], names: list[str]) -> None:
    assert [p["name"] for p in run({"clusters": body}).params] == names


@pytest.mark.parametrize(
    ("mode", "values", "want"),
    [
        (
            FAST,
            {"path": "envs/{{metadata.labels.env}}/{{nameNormalized}}"},
            {"values.path": "envs/prod/my-c3"},
        ),
        (
            GO,
            {"path": "envs/{{ .metadata.labels.env }}/{{ .name | lower }}"},
            {"values": {"path": "envs/prod/my_c3"}},
        ),
    ],
    ids=["fasttemplate", "goTemplate"],
)
def test_clusters_values_use_the_cluster_parameters(
    mode: templating.Mode, values: dict[str, str], want: dict[str, Any]
) -> None:
    params = run({"clusters": {"selector": {"matchLabels": {"env": "prod"}}, "values": values}}, mode).params
    assert {k: v for k, v in params[1].items() if k.startswith("values")} == want


CLUSTER_ERRORS = [
    ("flatList", {"clusters": {"flatList": True}}, "spec.generators[0].clusters.flatList", "not supported"),
    (
        "bad selector",
        {"clusters": {"selector": {"matchExpressions": [{"key": "env", "operator": "Like"}]}}},
        "spec.generators[0].clusters.selector",
        "'Like'",
    ),
    (
        "values not strings",
        {"clusters": {"values": {"replicas": 3}}},
        "spec.generators[0].clusters.values.replicas",
        "must be strings",
    ),
    (
        "typo in a field",
        {"clusters": {"selectr": {}}},
        "spec.generators[0].clusters.selectr",
        "unknown field",
    ),
]


@pytest.mark.parametrize(
    ("generator", "path", "words"), [c[1:] for c in CLUSTER_ERRORS], ids=[c[0] for c in CLUSTER_ERRORS]
)
def test_clusters_errors(generator: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(errors.GeneratorError) as caught:
        run(generator)
    assert caught.value.path == path
    assert words in caught.value.message


# --- clusterDecisionResource -----------------------------------------------------------------------


def test_cluster_decision_resource_with_ocm_placement_decisions() -> None:
    result = run(
        {
            "clusterDecisionResource": {
                "configMapRef": "ocm-placement",
                "labelSelector": {"matchLabels": {"cluster.open-cluster-management.io/placement": "p1"}},
                "values": {"team": "web"},
            }
        }
    )
    assert result.params == [
        {
            "name": "c1",
            "server": "https://c1.example:6443",
            "clusterName": "c1",
            "reason": "",
            "values.team": "web",
        }
    ]
    assert [(u.cluster, u.path) for u in result.unmatched] == [
        ("ghost", "spec.generators[0].clusterDecisionResource")
    ]
    assert "has no cluster Secret on the hub" in result.unmatched[0].reason


def test_cluster_decision_resource_by_name_with_go_template() -> None:
    result = run({"clusterDecisionResource": {"configMapRef": "ocm-placement", "name": "p2-decision-1"}}, GO)
    assert result.params == [
        {"name": "c2", "server": "https://c2.example:6443", "clusterName": "c2", "reason": ""}
    ]
    assert result.unmatched == []


def test_cluster_decision_resource_default_status_list_key() -> None:
    cm = {"apiVersion": "mallard.io/v1beta1", "kind": "ducks", "matchKey": "clusterName"}
    duck = {"metadata": {"name": "quak"}, "status": {"clusters": [{"clusterName": "c1"}, {"other": "x"}]}}
    inputs = generators.GeneratorInputs(INVENTORY, {"duck": cm}, {("mallard.io/v1beta1", "ducks"): [duck]})
    result = generators.generate_one(
        {"clusterDecisionResource": {"configMapRef": "duck", "name": "quak"}}, inputs, FAST, path="g"
    )
    assert [p["name"] for p in result.params] == ["c1"]
    assert "has no string 'clusterName'" in result.unmatched[0].reason


CDR_ERRORS = [
    ("no configMapRef", {"name": "x"}, "configMapRef", "required"),
    ("ConfigMap missing", {"configMapRef": "nope", "name": "x"}, "configMapRef", "'nope' not found"),
    (
        "name and labelSelector",
        {"configMapRef": "ocm-placement", "name": "x", "labelSelector": {"matchLabels": {"a": "b"}}},
        "clusterDecisionResource",
        "exactly one of name and labelSelector",
    ),
    ("neither", {"configMapRef": "ocm-placement"}, "clusterDecisionResource", "exactly one"),
    (
        "no such resource",
        {"configMapRef": "ocm-placement", "name": "missing"},
        "clusterDecisionResource",
        "no placementdecisions",
    ),
]


@pytest.mark.parametrize(
    ("body", "where", "words"), [c[1:] for c in CDR_ERRORS], ids=[c[0] for c in CDR_ERRORS]
)
def test_cluster_decision_resource_errors(body: dict[str, Any], where: str, words: str) -> None:
    with pytest.raises(errors.GeneratorError) as caught:
        run({"clusterDecisionResource": body})
    assert where in caught.value.path
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"apiVersion": "v1", "kind": "things", "matchKey": "x"}, "group/version"),
        ({"apiVersion": "a.io/v1", "kind": "things"}, "no data.matchKey"),
    ],
    ids=["core apiVersion", "no matchKey"],
)
def test_cluster_decision_resource_bad_config_maps(config: dict[str, str], words: str) -> None:
    inputs = generators.GeneratorInputs(INVENTORY, {"cm": config})
    with pytest.raises(errors.GeneratorError, match=words):
        generators.generate_one(
            {"clusterDecisionResource": {"configMapRef": "cm", "name": "x"}}, inputs, FAST, path="g"
        )


# --- matrix ----------------------------------------------------------------------------------------


def test_matrix_is_the_cartesian_product() -> None:
    params = run(
        {
            "matrix": {
                "generators": [
                    {"clusters": {"selector": {"matchLabels": {"env": "prod"}}}},
                    {"list": {"elements": [{"app": "guestbook"}, {"app": "redis"}]}},
                ]
            }
        }
    ).params
    assert [(p["name"], p["app"]) for p in params] == [
        ("c1", "guestbook"),
        ("c1", "redis"),
        ("My_C3", "guestbook"),
        ("My_C3", "redis"),
    ]


@pytest.mark.parametrize(
    ("mode", "second"),
    [
        (FAST, {"list": {"elements": [{"path": "apps/{{metadata.labels.env}}"}]}}),
        (GO, {"list": {"elements": [{"path": "apps/{{ .metadata.labels.env }}"}]}}),
    ],
    ids=["fasttemplate", "goTemplate"],
)
def test_matrix_second_child_uses_the_first_childs_parameters(
    mode: templating.Mode, second: dict[str, Any]
) -> None:
    params = run({"matrix": {"generators": [{"clusters": EVERY_ENV}, second]}}, mode).params
    assert [(p["name"], p["path"]) for p in params] == [
        ("c1", "apps/prod"),
        ("c2", "apps/dev"),
        ("My_C3", "apps/prod"),
    ]


def test_matrix_second_child_selector_templated_from_the_first() -> None:
    params = run(
        {
            "matrix": {
                "generators": [
                    {"list": {"elements": [{"wanted": "dev"}]}},
                    {"clusters": {"selector": {"matchLabels": {"env": "{{wanted}}"}}}},
                ]
            }
        }
    ).params
    assert [p["name"] for p in params] == ["c2"]


def test_matrix_go_template_first_child_wins_and_maps_merge() -> None:
    params = run(
        {
            "matrix": {
                "generators": [
                    {"list": {"elements": [{"x": "first", "values": {"a": "1"}}]}},
                    {"list": {"elements": [{"x": "second", "y": "y", "values": {"b": "2"}}]}},
                ]
            }
        },
        GO,
    ).params
    assert params == [{"x": "first", "y": "y", "values": {"a": "1", "b": "2"}}]


def test_matrix_nested() -> None:
    params = run(
        {
            "matrix": {
                "generators": [
                    {"list": {"elements": [{"a": "1"}, {"a": "2"}]}},
                    {
                        "matrix": {
                            "generators": [
                                {"list": {"elements": [{"b": "x"}]}},
                                {"list": {"elements": [{"c": "{{a}}{{b}}"}]}},
                            ]
                        }
                    },
                ]
            }
        }
    ).params
    assert params == [{"a": "1", "b": "x", "c": "1x"}, {"a": "2", "b": "x", "c": "2x"}]


MATRIX_ERRORS = [
    ("one child", {"matrix": {"generators": [{"clusters": {}}]}}, "exactly two child generators, got 1"),
    ("three children", {"matrix": {"generators": [{"clusters": {}}] * 3}}, "got 3"),
    (
        "conflicting parameter without goTemplate",
        {
            "matrix": {
                "generators": [{"list": {"elements": [{"x": "1"}]}}, {"list": {"elements": [{"x": "2"}]}}]
            }
        },
        "both matrix children set parameter 'x'",
    ),
    (
        "child error names its path",
        {"matrix": {"generators": [{"clusters": {}}, {"git": {}}]}},
        "spec.generators[0].matrix.generators[1].git",
    ),
]


@pytest.mark.parametrize(
    ("generator", "words"), [c[1:] for c in MATRIX_ERRORS], ids=[c[0] for c in MATRIX_ERRORS]
)
def test_matrix_errors(generator: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.GeneratorError, match=words.replace("[", r"\[").replace("]", r"\]")):
        run(generator)


# --- merge -----------------------------------------------------------------------------------------


def test_merge_overrides_base_by_merge_keys() -> None:
    params = run(
        {
            "merge": {
                "mergeKeys": ["name"],
                "generators": [
                    {"clusters": {**EVERY_ENV, "values": {"kafka": "true", "redis": "false"}}},
                    {
                        "list": {
                            "elements": [
                                {"name": "c2", "values.redis": "true"},
                                {"name": "unknown", "x": "y"},
                            ]
                        }
                    },
                ],
            }
        }
    ).params
    assert [(p["name"], p["values.kafka"], p["values.redis"]) for p in params] == [
        ("c1", "true", "false"),
        ("c2", "true", "true"),
        ("My_C3", "true", "false"),
    ]


def test_merge_go_template_deep_merges_on_top_level_keys() -> None:
    base = [{"id": "a", "values": {"x": "1"}}, {"id": "b", "values": {"x": "1"}}]
    override = {"id": "b", "values": {"x": "2", "y": "3"}}
    merge = {
        "mergeKeys": ["id"],
        "generators": [{"list": {"elements": base}}, {"list": {"elements": [override]}}],
    }
    params = run({"merge": merge}, GO).params
    assert params == [{"id": "a", "values": {"x": "1"}}, {"id": "b", "values": {"x": "2", "y": "3"}}]


def test_merge_go_template_dotted_key_is_not_looked_up_in_maps() -> None:
    elements = [{"values": {"id": "a"}}, {"values": {"id": "b"}}]
    merge = {"mergeKeys": ["values.id"], "generators": [{"list": {"elements": elements}}] * 2}
    with pytest.raises(errors.GeneratorError, match=r'same mergeKeys values \{"values.id": null\}'):
        run({"merge": merge}, GO)


MERGE_ERRORS = [
    ("one child", {"merge": {"mergeKeys": ["a"], "generators": [{"clusters": {}}]}}, "at least two"),
    ("no merge keys", {"merge": {"generators": [{"clusters": {}}, {"clusters": {}}]}}, "mergeKeys"),
    (
        "duplicate merge key values",
        {
            "merge": {
                "mergeKeys": ["a"],
                "generators": [{"list": {"elements": [{"a": "1"}, {"a": "1"}]}}, {"clusters": {}}],
            }
        },
        "same mergeKeys values",
    ),
]


@pytest.mark.parametrize(
    ("generator", "words"), [c[1:] for c in MERGE_ERRORS], ids=[c[0] for c in MERGE_ERRORS]
)
def test_merge_errors(generator: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.GeneratorError, match=words):
        run(generator)


# --- post-selectors, unknown generators, top level -------------------------------------------------


@pytest.mark.parametrize(
    ("generator", "mode", "names"),
    [
        ({"clusters": {}, "selector": {"matchLabels": {"metadata.labels.env": "dev"}}}, FAST, ["c2"]),
        ({"clusters": {}, "selector": {"matchLabels": {"metadata.labels.env": "prod"}}}, GO, ["c1", "My_C3"]),
        (
            {
                "list": {"elements": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]},
                "selector": {"matchLabels": {"n": "2"}},
            },
            GO,
            ["b"],
        ),
    ],
    ids=["fasttemplate keys", "goTemplate flattened", "non-string values compare as printed"],
)
def test_post_selector_filters_parameter_sets(
    generator: dict[str, Any], mode: templating.Mode, names: list[str]
) -> None:
    assert [p["name"] for p in run(generator, mode).params] == names


SHAPE_ERRORS = [
    (
        "unsupported generator",
        {"plugin": {"configMapRef": {"name": "x"}}},
        "spec.generators[0].plugin",
        "'plugin' is not supported by fleetplane; "
        "supported: list, clusters, clusterDecisionResource, git, matrix, merge",
    ),
    (
        "unknown generator",
        {"clustrs": {}},
        "spec.generators[0].clustrs",
        "unknown generator 'clustrs'; supported: list",
    ),
    ("empty generator", {}, "spec.generators[0]", "no generator; use one of"),
    (
        "two generators in one item",
        {"list": {}, "clusters": {}},
        "spec.generators[0]",
        "several generators (list, clusters)",
    ),
    (
        "per-generator template",
        {"list": {"elements": [], "template": {"metadata": {"name": "x"}}}},
        "spec.generators[0].list.template",
        "not supported",
    ),
    ("not a map", {"list": []}, "spec.generators[0].list", "must be a map"),
]


@pytest.mark.parametrize(
    ("generator", "path", "message"), [c[1:] for c in SHAPE_ERRORS], ids=[c[0] for c in SHAPE_ERRORS]
)
def test_generator_shape_errors(generator: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(errors.GeneratorError) as caught:
        run(generator)
    assert caught.value.path == path
    assert message in caught.value.message


def test_generate_concatenates_top_level_generators() -> None:
    spec = {
        "generators": [
            {"list": {"elements": [{"name": "from-list"}]}},
            {"clusters": {"selector": {"matchLabels": {"env": "dev"}}}},
        ]
    }
    assert [p["name"] for p in generators.generate(spec, INPUTS).params] == ["from-list", "c2"]


@pytest.mark.parametrize(
    "spec", [{}, {"generators": []}, {"generators": {}}], ids=["missing", "empty", "not a list"]
)
def test_generate_needs_generators(spec: dict[str, Any]) -> None:
    with pytest.raises(errors.GeneratorError, match=r"spec\.generators: missing or empty"):
        generators.generate(spec, INPUTS)


def test_referenced_config_maps() -> None:
    spec = {
        "generators": [
            {"clusterDecisionResource": {"configMapRef": "a"}},
            {
                "matrix": {
                    "generators": [
                        {"clusterDecisionResource": {"configMapRef": "b"}},
                        {"merge": {"generators": [{"clusterDecisionResource": {"configMapRef": "a"}}]}},
                    ]
                }
            },
        ]
    }
    assert generators.referenced_config_maps(spec) == ["a", "b"]
