"""``-o/--output``: one helper prints every command's objects as kubectl prints them.

Cases: table (upper-case headers, aligned, nothing cut, ``<none>`` for empty cells, wide columns
left out) and wide (they are in); yaml and json of Kubernetes objects (a v1 List) and of
fleetplane's records (a plain list); one record as itself; an empty list says so on stderr and
prints nothing on stdout; a tree (its own text) as table and as data.
"""

from __future__ import annotations

import json

import pytest
import yaml

from fleetplane import output
from fleetplane.output import Column, Format

RECORDS = [
    {"name": "worker-1", "labels": {"env": "dev", "team": "a"}, "partition": 3},
    {"name": "w-2", "labels": {}, "partition": 12},
]
COLUMNS = (
    Column.key("name", "name"),
    Column.key("labels", "labels"),
    Column.key("partition", "partition", wide=True),
)
OBJECTS = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]


def test_table_is_kubectls_plain_table_without_the_wide_columns() -> None:
    assert output.table(RECORDS, COLUMNS).splitlines() == [
        "NAME       LABELS",
        "worker-1   env=dev,team=a",
        "w-2        <none>",
    ]


def test_wide_adds_the_wide_columns() -> None:
    assert output.table(RECORDS, COLUMNS, wide=True).splitlines() == [
        "NAME       LABELS           PARTITION",
        "worker-1   env=dev,team=a   3",
        "w-2        <none>           12",
    ]


@pytest.mark.parametrize("fmt", [Format.TABLE, Format.WIDE])
def test_show_prints_tables(fmt: Format, capsys: pytest.CaptureFixture[str]) -> None:
    output.show(RECORDS, COLUMNS, fmt)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NAME") and ("PARTITION" in lines[0]) == (fmt is Format.WIDE)
    assert len(lines) == 3


def test_yaml_and_json_of_records_are_plain_lists(capsys: pytest.CaptureFixture[str]) -> None:
    output.show(RECORDS, COLUMNS, Format.JSON)
    assert json.loads(capsys.readouterr().out) == RECORDS
    output.show(RECORDS, COLUMNS, Format.YAML)
    assert yaml.safe_load(capsys.readouterr().out) == RECORDS


@pytest.mark.parametrize("fmt", [Format.YAML, Format.JSON])
def test_kubernetes_objects_print_as_a_v1_list(fmt: Format, capsys: pytest.CaptureFixture[str]) -> None:
    output.show(OBJECTS, COLUMNS, fmt, kubernetes=True)
    printed = yaml.safe_load(capsys.readouterr().out)  # JSON is YAML too
    assert printed["apiVersion"] == "v1" and printed["kind"] == "List"
    assert printed["items"] == OBJECTS


def test_one_record_prints_as_a_row_or_as_itself(capsys: pytest.CaptureFixture[str]) -> None:
    output.show_one(RECORDS[0], COLUMNS, Format.TABLE)
    assert capsys.readouterr().out.splitlines() == ["NAME       LABELS", "worker-1   env=dev,team=a"]
    output.show_one(RECORDS[0], COLUMNS, Format.JSON)
    assert json.loads(capsys.readouterr().out) == RECORDS[0]
    output.show_one(RECORDS[0], COLUMNS, Format.YAML)
    assert yaml.safe_load(capsys.readouterr().out) == RECORDS[0]


@pytest.mark.parametrize("fmt", list(Format))
def test_an_empty_list(fmt: Format, capsys: pytest.CaptureFixture[str]) -> None:
    output.show([], COLUMNS, fmt, empty="No consumers.")
    printed = capsys.readouterr()
    if fmt.is_data:
        assert yaml.safe_load(printed.out) == [] and printed.err == ""
    else:
        assert printed.out == "" and printed.err.strip() == "No consumers."


@pytest.mark.parametrize("fmt", list(Format))
def test_a_tree_prints_its_text_or_its_data(fmt: Format, capsys: pytest.CaptureFixture[str]) -> None:
    tree = {"label": "claim", "children": [{"label": "composite", "children": []}]}
    output.show_data(tree, fmt, lambda wide: "claim\n└─ composite" + (" (wide)" if wide else ""))
    printed = capsys.readouterr().out
    if fmt.is_data:
        assert yaml.safe_load(printed) == tree
    else:
        assert printed.startswith("claim\n└─ composite") and ("(wide)" in printed) == (fmt is Format.WIDE)
