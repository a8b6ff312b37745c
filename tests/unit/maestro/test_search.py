"""The search subset of upstream Maestro's REST API: what its clients send parses, the rest is
refused naming the part."""

from __future__ import annotations

import pytest

from maestro.api import search
from maestro.api.search import AllOf, AnyOf, Compare, LabelCompare, LabelsContain, Op


def test_what_upstreams_source_client_sends_for_a_list_parses() -> None:
    text = (
        "source='hub' and consumer_name='c1' and payload->'metadata'->'labels'@>'{\"app\":\"web\"}'"
        " and payload->'metadata'->'labels'->>'env'in('dev','test')"
        " and payload->'metadata'->'labels'->>'tier'<>'db'"
        " and payload->'metadata'->'labels'->>'owner'<>null"
    )
    assert search.parse(text) == AllOf(
        (
            Compare("source", Op.EQ, ("hub",)),
            Compare("consumer_name", Op.EQ, ("c1",)),
            LabelsContain({"app": "web"}),
            LabelCompare("env", Op.IN, ("dev", "test")),
            LabelCompare("tier", Op.NE, ("db",)),
            LabelCompare("owner", Op.NE, ()),
        )
    )


def test_a_resync_search_with_or_in_parentheses_parses() -> None:
    node = search.parse("source='hub' and (consumer_name='c1' or consumer_name='c2')")
    assert node == AllOf(
        (
            Compare("source", Op.EQ, ("hub",)),
            AnyOf((Compare("consumer_name", Op.EQ, ("c1",)), Compare("consumer_name", Op.EQ, ("c2",)))),
        )
    )


def test_names_lists_quotes_and_case_of_keywords() -> None:
    assert search.parse("name IN ('a', 'b''s') AND id != 'x'") == AllOf(
        (Compare("name", Op.IN, ("a", "b's")), Compare("id", Op.NE, ("x",)))
    )
    assert search.parse("name not in ('a')") == Compare("name", Op.NOT_IN, ("a",))
    assert search.parse("   ") is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name = 'x'; DROP TABLE resources; --", "';'"),
        ("name = 'x' or 1=1", "'1'"),
        ("name = 'x' union select name from consumers", "'union'"),
        ("spec = 'x'", "the field 'spec' is not supported"),
        ("name like 'x%'", "the operator 'like'"),
        ("name = x", "expected a quoted string"),
        ("name = 'x", "unterminated"),
        ("payload->'spec'->'labels'@>'{}'", "only payload->'metadata'->'labels'"),
        ("payload->'metadata'->'labels'@>'[1]'", "not a JSON object of strings"),
        ("(name = 'x'", "expected ')'"),
        ("name = 'x' and", "the end of the search"),
        ("pg_sleep(10) = 'x'", "the character '1'"),
        ("pg_sleep = 'x'", "the field 'pg_sleep'"),
    ],
)
def test_anything_else_is_refused_naming_the_part(text: str, named: str) -> None:
    with pytest.raises(search.InvalidSearch) as refused:
        search.parse(text)
    assert named in str(refused.value)
    assert "search" in str(refused.value)


def test_consumers_search_names_and_ids_only() -> None:
    assert search.parse("name='c1'", search.CONSUMER_FIELDS) == Compare("name", Op.EQ, ("c1",))
    with pytest.raises(search.InvalidSearch, match="consumer_name"):
        search.parse("consumer_name='c1'", search.CONSUMER_FIELDS)
    with pytest.raises(search.InvalidSearch, match="payload is not a field of consumers"):
        search.parse("payload->'metadata'->'labels'@>'{}'", search.CONSUMER_FIELDS)


def test_an_oversize_search_is_refused() -> None:
    with pytest.raises(search.InvalidSearch, match="longer than"):
        search.parse("name in (" + ",".join(["'x'"] * 10_000) + ")")


def test_the_source_a_search_requires() -> None:
    assert search.required_source(search.parse("source='hub' and consumer_name='c1'")) == "hub"
    assert search.required_source(search.parse("source = 'hub'")) == "hub"
    assert search.required_source(search.parse("source='hub' or source='other'")) == ""
    assert search.required_source(search.parse("source in ('hub')")) == ""
    assert search.required_source(None) == ""
