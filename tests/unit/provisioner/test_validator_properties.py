"""Properties of the claim and composition validators, over generated input.

A claim's parameters checked against any structural schema, a claim's extra agent rules of any
shape, a composition definition (XRD) of any shape and a composition's rendered output of any text
are each accepted or refused with problems that name a field under the path asked about; no other
exception escapes. A value built to fit a schema is accepted by it, and a schema-valid RBAC rule
list has no problem.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner import composed, permissions, schema, xrd

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
keys = st.one_of(st.from_regex(r"\A[a-z][a-zA-Z0-9]{0,8}\Z"), text)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
scalar_schemas = st.one_of(
    st.builds(
        lambda lo, hi: {"type": "integer", "minimum": lo, "maximum": lo + hi},
        st.integers(-100, 100),
        st.integers(0, 100),
    ),
    st.builds(lambda n: {"type": "string", "maxLength": n}, st.integers(0, 20)),
    st.just({"type": "string", "pattern": "^[a-z]+$"}),
    st.builds(
        lambda options: {"type": "string", "enum": options},
        st.lists(st.from_regex(r"\A[a-z]{1,5}\Z"), min_size=1, max_size=4, unique=True),
    ),
    st.just({"type": "boolean"}),
    st.just({"type": "number"}),
)
schemas = st.recursive(
    scalar_schemas,
    lambda inner: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.builds(
            lambda props, required: {
                "type": "object",
                "properties": props,
                "required": sorted(set(required) & set(props)),
            },
            st.dictionaries(st.from_regex(r"\A[a-z][a-zA-Z0-9]{0,8}\Z"), inner, max_size=4),
            st.lists(st.from_regex(r"\A[a-z][a-zA-Z0-9]{0,8}\Z"), max_size=3),
        ),
        st.builds(lambda values: {"type": "object", "additionalProperties": values}, inner),
    ),
    max_leaves=8,
)


def fitting(draw: st.DrawFn, node: dict[str, Any]) -> Any:
    """A value the schema accepts."""
    kind = node["type"]
    if kind == "integer":
        return draw(st.integers(node["minimum"], node["maximum"]))
    if kind == "string":
        if "enum" in node:
            return draw(st.sampled_from(node["enum"]))
        if "pattern" in node:
            return draw(st.from_regex(r"\A[a-z]{1,8}\Z"))
        return draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=node["maxLength"]))
    if kind == "boolean":
        return draw(st.booleans())
    if kind == "number":
        return draw(st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False))
    if kind == "array":
        return [fitting(draw, node["items"]) for _ in range(draw(st.integers(0, 3)))]
    if "additionalProperties" in node:
        return {
            draw(st.from_regex(r"\A[a-z]{1,6}\Z")): fitting(draw, node["additionalProperties"])
            for _ in range(draw(st.integers(0, 2)))
        }
    props = node["properties"]
    present = set(node["required"]) | set(
        draw(st.lists(st.sampled_from(sorted(props)), max_size=len(props)) if props else st.just([]))
    )
    return {name: fitting(draw, props[name]) for name in present}


@st.composite
def schemas_and_fitting_values(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    node = draw(schemas)
    return node, fitting(draw, node)


@BOUNDED
@given(schemas_and_fitting_values())
def test_a_value_built_to_fit_a_schema_is_accepted(case: tuple[dict[str, Any], Any]) -> None:
    node, value = case
    assert schema.validate(value, node, "spec.parameters") == []


@BOUNDED
@given(schemas, json_values)
def test_any_value_against_any_schema_is_accepted_or_refused_naming_a_field(
    node: dict[str, Any], value: Any
) -> None:
    for problem in schema.validate(value, node, "spec.parameters"):
        assert problem.field.startswith("spec.parameters") and problem.message and problem.fix


rules = st.lists(
    st.fixed_dictionaries(
        {
            "apiGroups": st.lists(st.sampled_from(["", "apps", "argoproj.io"]), min_size=1, max_size=2),
            "resources": st.lists(
                st.sampled_from(["configmaps", "deployments", "applications"]), min_size=1, max_size=2
            ),
            "verbs": st.lists(
                st.sampled_from(["get", "list", "watch", "create", "update", "patch", "delete"]),
                min_size=1,
                max_size=4,
            ),
        },
        optional={"namespace": st.from_regex(r"\A[a-z][a-z0-9]{0,10}\Z")},
    ),
    max_size=4,
)


@BOUNDED
@given(rules)
def test_well_formed_agent_rules_have_no_problem(given_rules: list[dict[str, Any]]) -> None:
    assert permissions.problems(given_rules) == []


@BOUNDED
@given(
    json_values | st.lists(st.dictionaries(st.sampled_from([*permissions.RULE_FIELDS, "other"]), json_values))
)
def test_any_agent_rules_are_accepted_or_refused_naming_a_field(given_rules: Any) -> None:
    for problem in permissions.problems(given_rules):
        assert problem.startswith(permissions.FIELD)


definitions = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["apiextensions.crossplane.io/v1", "v1"]) | text,
        "kind": st.just("CompositeResourceDefinition") | text,
        "metadata": st.fixed_dictionaries({}, optional={"name": text, "uid": text}) | json_values,
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "group": st.just("platform.example.org") | text,
                "names": st.fixed_dictionaries({}, optional={"kind": text, "plural": text}) | json_values,
                "claimNames": st.fixed_dictionaries({}, optional={"kind": text, "plural": text})
                | json_values,
                "versions": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "name": st.just("v1alpha1") | text,
                            "served": st.booleans() | json_values,
                            "referenceable": st.booleans() | json_values,
                            "schema": st.fixed_dictionaries(
                                {}, optional={"openAPIV3Schema": schemas | json_values}
                            ),
                        },
                    )
                    | json_values,
                    max_size=3,
                )
                | json_values,
            },
        )
        | json_values,
    },
)


@BOUNDED
@given(definitions)
def test_any_definition_is_made_into_crds_or_refused_naming_a_field(definition: dict[str, Any]) -> None:
    try:
        xrd.generated_crds(definition)
    except xrd.DefinitionError as exc:
        assert exc.field and str(exc)


@BOUNDED
@given(
    st.one_of(
        text,
        st.lists(json_values.map(lambda v: yaml.safe_dump(v)), max_size=4).map("---\n".join),
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "apiVersion": st.just("v1") | text,
                    "kind": st.just("ConfigMap") | text,
                    "metadata": st.fixed_dictionaries(
                        {}, optional={"name": text, "namespace": text, "labels": json_values}
                    )
                    | json_values,
                },
            ).map(lambda v: yaml.safe_dump(v)),
            max_size=4,
        ).map("---\n".join),
    )
)
def test_any_rendered_composition_is_parsed_or_refused_at_a_line(rendered: str) -> None:
    try:
        composed.parse(rendered, "composition.yaml")
    except composed.RenderError as exc:
        assert exc.source == "composition.yaml" and exc.message
