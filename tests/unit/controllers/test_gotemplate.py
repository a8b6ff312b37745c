"""The goTemplate subset renders what Go's text/template + sprig render, and rejects the rest.

Cases: field access, index, if/else if/else, with, range (lists, maps, ints, else, break,
continue, variables), variables and assignment, pipelines, every supported function, printf verbs
and Go's mismatch output, value printing (nil, floats, lists, maps), trim markers, comments,
literals; errors for every unsupported construct and for runtime type errors, each naming the
construct; missingkey=error; properties (plain text passes through, JSON round-trips, Go quoting
is a valid literal, float formatting round-trips).
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.propagation import errors, gotemplate
from controllers.propagation.gotemplate import functions, values

DATA: dict[str, Any] = {
    "name": "cluster-1",
    "metadata": {"labels": {"env": "prod", "topology.kubernetes.io/region": "eu-west-1"}},
    "list": ["a", "b", "c"],
    "map": {"b": 2, "a": 1},
    "nested": {"x": {"y": "deep"}},
    "empty": "",
    "nothing": [],
    "zero": 0,
    "null": None,
    "flag": True,
    "num": 3,
    "f": 1.5,
    "big": 1000000.0,
}

# (id, template, expected) - expected is what Go's text/template with sprig prints
RENDERS = [
    ("field", "{{.name}}", "cluster-1"),
    ("nested field", "{{ .metadata.labels.env }}", "prod"),
    ("index dotted key", '{{ index .metadata.labels "topology.kubernetes.io/region" }}', "eu-west-1"),
    ("index list", "{{ index .list 1 }}", "b"),
    ("index several keys", '{{ index .nested "x" "y" }}', "deep"),
    ("index missing key is nil", '{{ index .metadata.labels "nope" }}', "<no value>"),
    ("missing field prints no value", "{{ .missing }}", "<no value>"),
    ("null prints no value", "{{ .null }}", "<no value>"),
    (
        "if true",
        '{{ if eq .name "cluster-1" }}one{{ else if eq .name "c2" }}two{{ else }}other{{ end }}',
        "one",
    ),
    (
        "else if",
        '{{ if eq .name "x" }}one{{ else if eq .name "cluster-1" }}two{{ else }}other{{ end }}',
        "two",
    ),
    ("else", '{{ if eq .name "x" }}one{{ else if eq .name "y" }}two{{ else }}other{{ end }}', "other"),
    ("if empty string is false", "{{ if .empty }}yes{{ else }}no{{ end }}", "no"),
    ("if zero is false", "{{ if .zero }}yes{{ else }}no{{ end }}", "no"),
    ("if null is false", "{{ if .null }}yes{{ else }}no{{ end }}", "no"),
    ("if missing is false", "{{ if .missing }}yes{{ else }}no{{ end }}", "no"),
    ("if with declaration", "{{ if $x := .name }}{{ $x }}{{ end }}", "cluster-1"),
    ("with", "{{ with .nested.x }}{{ .y }}{{ end }}", "deep"),
    ("with else", "{{ with .empty }}x{{ else }}none{{ end }}", "none"),
    ("range list", "{{ range .list }}{{ . }},{{ end }}", "a,b,c,"),
    ("range index and value", "{{ range $i, $v := .list }}{{ $i }}{{ $v }}{{ end }}", "0a1b2c"),
    ("range one variable is the element", "{{ range $v := .list }}{{ $v }}{{ end }}", "abc"),
    ("range map in key order", "{{ range $k, $v := .map }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;"),
    ("range missing runs else", "{{ range .null }}x{{ else }}none{{ end }}", "none"),
    ("range empty list runs else", "{{ range .nothing }}x{{ else }}none{{ end }}", "none"),
    ("range root variable", "{{ range .list }}{{ $.num }}{{ end }}", "333"),
    ("range int", "{{ range 3 }}{{ . }}{{ end }}", "012"),
    ("break", '{{ range .list }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
    ("continue", '{{ range .list }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
    ("variable", "{{ $n := .name }}{{ $n }}", "cluster-1"),
    ("assignment reaches outer scope", '{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}', "b"),
    ("dollar is the root", "{{ with .nested }}{{ $.name }}{{ end }}", "cluster-1"),
    ("parenthesized with field", '{{ (index .nested "x").y }}', "deep"),
    ("pipeline", "{{ .name | upper }}", "CLUSTER-1"),
    ("pipeline chain", '{{ .name | replace "-" "_" | upper }}', "CLUSTER_1"),
    ("printf", '{{ printf "%s-%d" .name .num }}', "cluster-1-3"),
    ("printf width and flags", '{{ printf "%05d|%-4s|%4s|%+d" 42 "ab" "cd" 7 }}', "00042|ab  |  cd|+7"),
    ("printf v of list and map", '{{ printf "%v %v" .list .map }}', "[a b c] map[a:1 b:2]"),
    ("printf q", '{{ printf "%q" "a\\"b" }}', '"a\\"b"'),
    ("printf x of string and int", '{{ printf "%x %X" "hi" 255 }}', "6869 FF"),
    ("printf precision", '{{ printf "%.2f %.3s %e" .f "abcdef" .big }}', "1.50 abc 1.000000e+06"),
    ("printf t", '{{ printf "%t" .flag }}', "true"),
    ("printf g", '{{ printf "%g|%.3g|%v" 0.000012 3.14159 1e21 }}', "1.2e-05|3.14|1e+21"),
    ("printf wrong type", '{{ printf "%d" "x" }}', "%!d(string=x)"),
    ("printf missing argument", '{{ printf "%s %s" "a" }}', "a %!s(MISSING)"),
    ("printf extra argument", '{{ printf "%s" "a" "b" }}', "a%!(EXTRA string=b)"),
    ("printf percent", '{{ printf "100%%" }}', "100%"),
    ("printf nil", '{{ printf "%v %s" .null .null }}', "<nil> %!s(<nil>)"),
    ("default on missing", '{{ .missing | default "x" }}', "x"),
    ("default on empty string", '{{ .empty | default "x" }}', "x"),
    ("default on zero", '{{ default "x" .zero }}', "x"),
    ("default keeps a value", '{{ .name | default "x" }}', "cluster-1"),
    ("lower", '{{ "ABC" | lower }}', "abc"),
    ("upper keeps characters without a one-character upper case", '{{ "straße" | upper }}', "STRAßE"),
    ("trunc", "{{ trunc 3 .name }}", "clu"),
    ("trunc negative", "{{ trunc -3 .name }}", "r-1"),
    ("trunc longer than the string", "{{ trunc 50 .name }}", "cluster-1"),
    ("quote", "{{ quote .name }}", '"cluster-1"'),
    ("quote several and skips nil", "{{ quote .name .num .null }}", '"cluster-1" "3"'),
    ("squote", "{{ squote .name }}", "'cluster-1'"),
    ("toJson map", "{{ toJson .map }}", '{"a":1,"b":2}'),
    ("toJson list", "{{ toJson .list }}", '["a","b","c"]'),
    ("toJson escapes html", '{{ toJson "<a&b>" }}', '"\\u003ca\\u0026b\\u003e"'),
    ("toJson float", "{{ toJson .big }}", "1000000"),
    ("normalize", '{{ normalize "My_Cluster.Name!" }}', "my-cluster.name"),
    ("eq several", '{{ eq .name "x" "cluster-1" }}', "true"),
    ("eq nil", "{{ eq .null .missing }}", "true"),
    ("eq nil and string", '{{ eq .null "x" }}', "false"),
    ("ne", '{{ ne .name "x" }}', "true"),
    ("le and gt", "{{ le 2 2 }} {{ gt 1 2 }}", "true false"),
    ("lt numbers", "{{ lt 1 2 }}", "true"),
    ("ge strings", '{{ ge "b" "a" }}', "true"),
    ("and returns last", "{{ and .name .num }}", "3"),
    ("or returns first true", "{{ or .empty .name }}", "cluster-1"),
    ("and short-circuits", "{{ and .empty .missing.x }}", ""),
    ("or short-circuits", "{{ or .name .missing.x }}", "cluster-1"),
    ("and with a piped value", "{{ .num | and .name }}", "3"),
    ("not", "{{ not .empty }}", "true"),
    ("len list", "{{ len .list }}", "3"),
    ("len counts bytes", '{{ len "héllo" }}', "6"),
    ("print spaces between non-strings", '{{ print "a" 1 2 "b" }}', "a1 2b"),
    ("println", '{{ println "a" 1 }}', "a 1\n"),
    ("float", "{{ .f }}", "1.5"),
    ("big float uses an exponent", "{{ .big }}", "1e+06"),
    ("bool", "{{ .flag }}", "true"),
    ("map", "{{ .map }}", "map[a:1 b:2]"),
    ("list", "{{ .list }}", "[a b c]"),
    ("trim markers", "a {{- .name -}} b", "acluster-1b"),
    ("trim marker eats newlines", "a\n  {{- .name }}\n", "acluster-1\n"),
    ("comment", "x{{/* note */}}y", "xy"),
    ("comment with trim markers", "x  {{- /* note */ -}}  y", "xy"),
    ("raw string", '{{ `a"b` }}', 'a"b'),
    ("escapes", '{{ "tab\\there" }}', "tab\there"),
    ("unicode escape", '{{ "\\u00e9" }}', "é"),
    ("hex number", "{{ 0x1F }}", "31"),
    ("negative number", "{{ -3 }}", "-3"),
    ("ternary", '{{ ternary "yes" "no" .flag }}', "yes"),
    ("coalesce", '{{ coalesce .empty .null "third" }}', "third"),
    ("empty", "{{ empty .list }}", "false"),
    ("contains", '{{ contains "ust" .name }}', "true"),
    ("hasPrefix", '{{ hasPrefix "clu" .name }}', "true"),
    ("hasSuffix", '{{ hasSuffix "-1" .name }}', "true"),
    ("trimPrefix", '{{ trimPrefix "cluster-" .name }}', "1"),
    ("trimSuffix", '{{ trimSuffix "-1" .name }}', "cluster"),
    ("trim", '{{ trim "  x  " }}', "x"),
    ("trimAll", '{{ trimAll "-" "--x--" }}', "x"),
    ("join", '{{ join "," .list }}', "a,b,c"),
    ("splitList", '{{ splitList "-" .name }}', "[cluster 1]"),
    ("list", '{{ list 1 "a" }}', "[1 a]"),
    ("dict", '{{ toJson (dict "k" "v" "n" 1) }}', '{"k":"v","n":1}'),
    ("toString", "{{ toString .num }}", "3"),
    ("plain text", "no actions here", "no actions here"),
    ("text around actions", "https://{{ .name }}.example/{{ .num }}", "https://cluster-1.example/3"),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in RENDERS], ids=[c[0] for c in RENDERS])
def test_renders_like_go(template: str, expected: str) -> None:
    assert gotemplate.render(template, DATA) == expected


# (id, template, words the error must contain: the construct, then the detail)
FAILURES = [
    (
        "unknown function",
        "{{ sha256sum .name }}",
        ["function 'sha256sum'", "not supported", "supported functions"],
    ),
    ("define", '{{ define "x" }}{{ end }}', ["{{define}}", "not supported"]),
    ("template", '{{ template "x" }}', ["{{template}}"]),
    ("block", '{{ block "x" . }}{{ end }}', ["{{block}}"]),
    ("else with", "{{ with .name }}{{ else with .list }}{{ end }}", ["{{else with}}", "not supported"]),
    ("else if in range", "{{ range .list }}{{ else if .name }}{{ end }}", ["{{else if}}"]),
    ("character constant", "{{ 'a' }}", ["character constant"]),
    ("unclosed action", "{{ .name ", ["action", "unclosed"]),
    ("unclosed if", "{{ if .name }}x", ["{{end}}", "not closed"]),
    ("stray end", "{{ end }}", ["{{end}}", "no matching"]),
    ("if without value", "{{ if }}{{ end }}", ["{{if}}", "missing value"]),
    ("undefined variable", "{{ $nope }}", ["variable $nope", "undefined"]),
    ("assign undeclared", "{{ $y = 1 }}", ["variable $y", "declare"]),
    ("two variables outside range", "{{ $a, $b := .list }}", ["two variables"]),
    ("field of null", "{{ .null.deeper }}", [".null.deeper", "nil pointer"]),
    ("field of a string", "{{ .name.first }}", [".name.first", "can't evaluate field first in type string"]),
    ("wrong argument type", "{{ lower .num }}", ["function 'lower'", "expected string; got int"]),
    (
        "nil to a string function",
        "{{ upper .missing }}",
        ["function 'upper'", "invalid value; expected string"],
    ),
    ("wrong argument count", '{{ replace "a" }}', ["function 'replace'", "wrong number of args"]),
    ("index out of range", "{{ index .list 9 }}", ["function 'index'", "index out of range: 9"]),
    ("index of nil", '{{ index .missing "a" }}', ["function 'index'", "nil"]),
    ("arguments to a field", '{{ .name "x" }}', [".name", "can't give argument to non-function"]),
    ("nil command", "{{ nil }}", ["nil", "not a command"]),
    ("incompatible eq", "{{ eq .name 1 }}", ["function 'eq'", "incompatible types for comparison"]),
    ("non-comparable eq", "{{ eq .list .list }}", ["function 'eq'", "non-comparable"]),
    ("ordered bools", "{{ lt true false }}", ["function 'lt'", "invalid type for comparison"]),
    ("range over a string", "{{ range .name }}{{ end }}", ["range can't iterate over cluster-1"]),
    (
        "two variables over an int",
        "{{ range $i, $v := 3 }}{{ end }}",
        ["two variables to range over an integer"],
    ),
    ("break outside range", "{{ break }}", ["{{break}}", "only allowed inside {{range}}"]),
    ("printf # flag", '{{ printf "%#v" .map }}', ["function 'printf'", "'#' flag"]),
    ("printf unsupported verb", '{{ printf "%c" 65 }}', ["function 'printf'", "verb %c"]),
    ("unterminated string", '{{ "abc }}', ["string", "unterminated"]),
    ("bad number", "{{ 12ab }}", ["number", "12ab"]),
    ("comment not alone", "{{/* c */ .x }}", ["comment"]),
    ("control word as function", "{{ print if }}", ["{{if}}", "own action"]),
    ("empty action", "{{ }}", ["{{}}", "empty action"]),
]


@pytest.mark.parametrize(("template", "words"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES])
def test_unsupported_or_wrong_constructs_fail_naming_the_construct(template: str, words: list[str]) -> None:
    with pytest.raises(errors.TemplateError) as caught:
        gotemplate.render(template, DATA)
    message = str(caught.value)
    assert caught.value.construct in message
    for word in words:
        assert word in message
    assert caught.value.source and caught.value.source in template  # the template is quoted back


@pytest.mark.parametrize(
    ("template", "expected"),
    [("{{ .name }}", "cluster-1"), ('{{ index . "missing" }}', "<no value>"), ("{{ .null }}", "<no value>")],
    ids=["present key", "index ignores missingkey", "a present null is not missing"],
)
def test_missingkey_error_allows_present_keys(template: str, expected: str) -> None:
    assert gotemplate.render(template, DATA, missing_key_error=True) == expected


@pytest.mark.parametrize(
    "template",
    [
        "{{ .missing }}",
        '{{ .missing | default "x" }}',
        "{{ .metadata.labels.tier }}",
        "{{ if .missing }}{{ end }}",
    ],
    ids=["print", "even inside default", "nested", "even in if"],
)
def test_missingkey_error_rejects_missing_keys(template: str) -> None:
    with pytest.raises(errors.TemplateError, match="map has no entry for key"):
        gotemplate.render(template, DATA, missing_key_error=True)


def test_parsed_templates_are_cached() -> None:
    gotemplate.compile_template.cache_clear()
    for _ in range(3):
        gotemplate.render("{{ .name }}-cached", DATA)
    assert gotemplate.compile_template.cache_info().hits == 2


@settings(max_examples=60, deadline=None)
@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_actions_is_returned_unchanged(text: str) -> None:
    assert gotemplate.render(text, DATA) == text


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_a_string_parameter_prints_as_itself(text: str) -> None:
    assert gotemplate.render("{{ .s }}", {"s": text}) == text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_to_json_round_trips(value: Any) -> None:
    assert json.loads(values.to_json(value)) == value


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_go_quote_is_a_valid_literal_of_the_same_text(text: str) -> None:
    # Go's escapes (\a, \x07, \u00a0, \U0001f600...) are all valid Python escapes too
    assert ast.literal_eval(values.go_quote(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_formatting_round_trips(number: float) -> None:
    assert float(values.format_float_g(number)) == number
    assert float(values.format_float_json(number)) == number


@pytest.mark.parametrize(
    ("number", "expected_v", "expected_json"),
    [
        (1.0, "1", "1"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "0.00001"),
        (123456.0, "123456", "123456"),
        (1234567.0, "1.234567e+06", "1234567"),
        (1e21, "1e+21", "1e+21"),
        (1e-7, "1e-07", "1e-7"),
        (-2.5, "-2.5", "-2.5"),
        (math.inf, "+Inf", "+Inf"),
    ],
    ids=lambda v: str(v),
)
def test_floats_print_as_go_prints_them(number: float, expected_v: str, expected_json: str) -> None:
    assert values.format_float_g(number) == expected_v
    if math.isfinite(number):
        assert values.format_float_json(number) == expected_json


def test_the_documented_function_list_is_the_implemented_one() -> None:
    doc = (pathlib.Path(functions.__file__).parents[1] / "TEMPLATING.md").read_text()
    listed: set[str] = set()
    for heading in ("**Go builtins**", "**sprig functions**", "**Argo CD functions**"):
        bullet = doc.split(heading, 1)[1].split("\n- ", 1)[0]
        listed.update(re.findall(r"`([A-Za-z]+)`", bullet))
    assert listed == set(functions.FUNCTIONS)
