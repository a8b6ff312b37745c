"""Rendering templates: fasttemplate as Argo CD does it, goTemplate dispatch, paths in errors.

Cases: fasttemplate substitution with spaces, unknown and non-string parameters left as written,
map keys rendered, unclosed placeholders, strings without a same-line {{...}} left alone; goTemplate
options (missingkey=error, zero and unknown options rejected); render_application (templatePatch
rejected, empty params leave the template as written, None map values dropped); every error names
its template path.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.propagation import errors, templating

FAST = templating.Mode()
GO = templating.Mode(go_template=True)
PARAMS = {"name": "c1", "metadata.labels.env": "prod", "count": 3}

FASTTEMPLATE = [
    ("plain", "guestbook", "guestbook"),
    ("simple", "{{name}}-app", "c1-app"),
    ("spaces ignored", "{{ name }}-app", "c1-app"),
    ("dotted key", "{{metadata.labels.env}}", "prod"),
    ("unknown left as written", "{{nope}}/{{ name }}", "{{nope}}/c1"),
    ("unknown keeps its spaces", "{{ nope }}", "{{ nope }}"),
    ("non-string parameter left as written", "{{count}}", "{{count}}"),
    ("empty tag left", "{{}}", "{{}}"),
    ("no closing on the line: not templated", "{{name\n}}", "{{name\n}}"),
    ("several", "{{name}}.{{name}}", "c1.c1"),
]


@pytest.mark.parametrize(("text", "want"), [c[1:] for c in FASTTEMPLATE], ids=[c[0] for c in FASTTEMPLATE])
def test_fasttemplate(text: str, want: str) -> None:
    assert templating.render_string(text, PARAMS, FAST) == want


def test_fasttemplate_unclosed_placeholder_names_the_path() -> None:
    with pytest.raises(errors.TemplateError, match=r"spec\.source\.path: \{\{: a placeholder is not closed"):
        templating.render_value({"spec": {"source": {"path": "{{name}}/{{oops"}}}, PARAMS, FAST)


def test_render_value_renders_keys_and_nested_values_only_for_strings() -> None:
    template = {
        "metadata": {"annotations": {"team.{{name}}/owner": "{{name}}"}},
        "spec": {"replicas": 3, "enabled": True, "list": ["{{name}}", 1], "nothing": None},
    }
    assert templating.render_value(template, PARAMS, FAST) == {
        "metadata": {"annotations": {"team.c1/owner": "c1"}},
        "spec": {"replicas": 3, "enabled": True, "list": ["c1", 1]},
    }


@settings(max_examples=60, deadline=None)
@given(st.text().filter(lambda s: "{{" not in s))
def test_fasttemplate_leaves_text_without_placeholders(text: str) -> None:
    assert templating.render_string(text, PARAMS, FAST) == text


MODES = [
    ("default", {}, templating.Mode()),
    ("goTemplate", {"goTemplate": True}, templating.Mode(go_template=True)),
    (
        "missingkey=error",
        {"goTemplate": True, "goTemplateOptions": ["missingkey=error"]},
        templating.Mode(True, True),
    ),
    (
        "last option wins",
        {"goTemplate": True, "goTemplateOptions": ["missingkey=error", "missingkey=default"]},
        GO,
    ),
    ("invalid is default", {"goTemplate": True, "goTemplateOptions": ["missingkey=invalid"]}, GO),
]


@pytest.mark.parametrize(("spec", "want"), [c[1:] for c in MODES], ids=[c[0] for c in MODES])
def test_mode_from_spec(spec: dict[str, Any], want: templating.Mode) -> None:
    assert templating.Mode.from_spec(spec) == want


BAD_MODES = [
    ("missingkey=zero", {"goTemplate": True, "goTemplateOptions": ["missingkey=zero"]}, "missingkey=zero"),
    ("unknown option", {"goTemplate": True, "goTemplateOptions": ["strict"]}, "unknown option"),
    ("goTemplate not bool", {"goTemplate": "yes"}, "spec.goTemplate"),
    ("options not a list", {"goTemplateOptions": "missingkey=error"}, "must be a list"),
]


@pytest.mark.parametrize(("spec", "words"), [c[1:] for c in BAD_MODES], ids=[c[0] for c in BAD_MODES])
def test_bad_modes_are_rejected(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.TemplateError, match=words):
        templating.Mode.from_spec(spec)


def test_go_template_errors_carry_path_construct_and_source() -> None:
    template = {"spec": {"source": {"repoURL": "{{ sha256sum .name }}"}}}
    with pytest.raises(errors.TemplateError) as caught:
        templating.render_value(template, {"name": "c1"}, GO)
    assert caught.value.path == "spec.source.repoURL"
    assert caught.value.construct == "function 'sha256sum'"
    assert caught.value.source == "{{ sha256sum .name }}"
    assert str(caught.value).startswith("spec.source.repoURL: function 'sha256sum': not supported")


def test_paths_quote_keys_that_are_not_identifiers_and_index_lists() -> None:
    template = {
        "metadata": {"labels": {"app.kubernetes.io/name": "{{ .nope.x }}"}},
        "spec": {"sources": [{}, {"path": "{{ .a.b }}"}]},
    }
    nulls = {"nope": None, "a": None}
    with pytest.raises(errors.TemplateError) as caught:
        templating.render_value({"metadata": template["metadata"]}, nulls, GO)
    assert caught.value.path == 'metadata.labels["app.kubernetes.io/name"]'
    with pytest.raises(errors.TemplateError) as caught:
        templating.render_value({"spec": template["spec"]}, nulls, GO)
    assert caught.value.path == "spec.sources[1].path"


def test_missingkey_error_mode_names_the_key() -> None:
    with pytest.raises(errors.TemplateError, match=r'spec\.project: \.team: map has no entry for key "team"'):
        templating.render_value(
            {"spec": {"project": "{{ .team }}"}}, {"name": "c1"}, templating.Mode(True, True)
        )


APPLICATIONS = [
    (
        "fasttemplate",
        {"template": {"metadata": {"name": "{{name}}-app"}}},
        {"name": "c1"},
        {"metadata": {"name": "c1-app", "finalizers": [templating.RESOURCES_FINALIZER]}},
    ),
    (
        "goTemplate",
        {"goTemplate": True, "template": {"metadata": {"name": "{{ .name | upper }}"}}},
        {"name": "c1"},
        {"metadata": {"name": "C1", "finalizers": [templating.RESOURCES_FINALIZER]}},
    ),
    (
        "no params: as written",
        {"goTemplate": True, "template": {"metadata": {"name": "{{ .name }}"}}},
        {},
        {"metadata": {"name": "{{ .name }}"}},
    ),
]


@pytest.mark.parametrize(
    ("spec", "params", "want"), [c[1:] for c in APPLICATIONS], ids=[c[0] for c in APPLICATIONS]
)
def test_render_application(spec: dict[str, Any], params: dict[str, Any], want: dict[str, Any]) -> None:
    assert templating.render_application(spec, params) == want


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            {"template": {"metadata": {}}, "templatePatch": "- a list"},
            "spec.templatePatch: must render to a map",
        ),
        (
            {"template": {"metadata": {}}, "templatePatch": "a: [b"},
            "spec.templatePatch: renders to invalid YAML",
        ),
        ({}, "spec.template: missing"),
    ],
    ids=["templatePatch not a map", "templatePatch not YAML", "no template"],
)
def test_render_application_rejects(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.TemplateError, match=words):
        templating.render_application(spec, {"name": "c1"})


def test_the_spec_is_normalised_as_argo_cd_stores_it() -> None:
    spec = {
        "template": {
            "metadata": {"name": "{{name}}"},
            "spec": {
                "project": "default",
                "source": {"repoURL": "r", "targetRevision": "", "helm": {"valueFiles": []}, "plugin": {}},
                "destination": {"name": "{{name}}", "namespace": ""},
                "syncPolicy": {"automated": {}, "syncOptions": []},
            },
        }
    }
    assert templating.render_application(spec, {"name": "c1"})["spec"] == {
        "project": "default",
        "source": {"repoURL": "r", "plugin": {}},
        "destination": {"name": "c1"},
        "syncPolicy": {"automated": {}},
    }
    spec["template"]["spec"]["syncPolicy"] = {"syncOptions": []}
    assert "syncPolicy" not in templating.render_application(spec, {"name": "c1"})["spec"]
