"""The ``search`` parameter of upstream Maestro's REST API: the SQL-like subset its clients send.

Upstream's clients filter resource bundles by source, consumer and name, and by the labels of the
work's metadata as the JSON operators of PostgreSQL on the stored payload, for example::

    source='hub' and (consumer_name='c1' or consumer_name='c2')
    payload->'metadata'->'labels'@>'{"app":"web","tier":"db"}'
    payload->'metadata'->'labels'->>'env' in ('dev','test')
    payload->'metadata'->'labels'->>'env'<>'prod'
    payload->'metadata'->'labels'->>'owner'<>null

This module parses that subset into a small tree; storage turns the tree into parameterised SQL, so
no text of a search ever becomes SQL. Anything else is refused with ``InvalidSearch`` naming the
part that is not supported.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping, Sequence

from maestro.api import errors

#: the most a search may hold: a client's filter, not a program
MAX_SEARCH_BYTES = 16 * 1024
_MAX_VALUES = 1000


class InvalidSearch(errors.InvalidArgument):
    """A search outside the supported subset; the message names the part."""

    def __init__(self, problem: str) -> None:
        super().__init__("search", problem, f"use {SUPPORTED}")


SUPPORTED = (
    "comparisons of id, name, consumer_name and source (=, !=, <>, in, not in) with quoted strings, "
    "joined by and/or with parentheses, and label tests on payload->'metadata'->'labels' "
    "(@> a JSON object of strings; ->>'key' with =, <>, in, not in, or <> null)"
)


class Op(enum.StrEnum):
    EQ = "="
    NE = "<>"
    IN = "in"
    NOT_IN = "not in"


@dataclasses.dataclass(frozen=True, slots=True)
class Compare:
    """A column (one of the fields a search may name) compared with strings."""

    field: str
    op: Op
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class LabelsContain:
    """The work's labels hold every pair."""

    labels: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class LabelCompare:
    """One label compared with strings; ``values`` empty with ``NE``: the label is set."""

    key: str
    op: Op
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AllOf:
    terms: tuple[Node, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AnyOf:
    terms: tuple[Node, ...]


Node = Compare | LabelsContain | LabelCompare | AllOf | AnyOf

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<op>->>|->|@>|<>|!=|=|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_LABELS_PATH = ("payload", "->", "'metadata'", "->", "'labels'")


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, op, word, other, end
    text: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:  # trailing blanks
            break
        kind = found.lastgroup or "other"
        token = found.group(kind)
        if kind == "string" and not token.endswith("'"):
            raise InvalidSearch(f"unterminated string at {token!r}")
        out.append(_Token(kind, token))
        position = found.end()
    if any(token.kind == "other" for token in out):
        bad = next(token for token in out if token.kind == "other")
        if bad.text == "'":
            raise InvalidSearch("an unterminated string")
        raise InvalidSearch(f"the character {bad.text!r} is not supported")
    out.append(_Token("end", ""))
    return out


def _unquote(token: _Token) -> str:
    value = token.text[1:-1].replace("''", "'")
    if "\x00" in value:
        raise InvalidSearch("a string holds a NUL character")
    return value


class _Parser:
    def __init__(self, text: str, fields: Sequence[str]) -> None:
        self._tokens = _tokens(text)
        self._at = 0
        self._fields = fields

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _take(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _expect(self, text: str, after: str) -> None:
        token = self._take()
        if token.text.lower() != text:
            raise InvalidSearch(f"expected {text!r} after {after}, found {_shown(token)}")

    def parse(self) -> Node:
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            raise InvalidSearch(f"{_shown(token)} is not supported here")
        return node

    def _or(self) -> Node:
        terms = [self._and()]
        while self._peek().is_word("or"):
            self._take()
            terms.append(self._and())
        return terms[0] if len(terms) == 1 else AnyOf(tuple(terms))

    def _and(self) -> Node:
        terms = [self._term()]
        while self._peek().is_word("and"):
            self._take()
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def _term(self) -> Node:
        token = self._peek()
        if token.text == "(":
            self._take()
            node = self._or()
            self._expect(")", "a parenthesised condition")
            return node
        if token.is_word("payload"):
            return self._labels()
        if token.kind == "word" and token.text.lower() in self._fields:
            self._take()
            op, values = self._comparison(token.text.lower(), allow_null=False)
            return Compare(token.text.lower(), op, values)
        if token.kind == "word":
            raise InvalidSearch(
                f"the field {token.text!r} is not supported (supported: {', '.join(self._fields)}"
                + (", payload->'metadata'->'labels')" if "source" in self._fields else ")")
            )
        raise InvalidSearch(f"{_shown(token)} is not supported where a condition starts")

    def _labels(self) -> Node:
        if "source" not in self._fields:
            raise InvalidSearch("payload is not a field of consumers")
        for part in _LABELS_PATH:
            token = self._take()
            if token.text.lower() != part:
                raise InvalidSearch(
                    f"only payload->'metadata'->'labels' is supported, found {_shown(token)} for {part}"
                )
        token = self._take()
        if token.text == "@>":
            return LabelsContain(self._label_object(self._take()))
        if token.text == "->>":
            key = self._take()
            if key.kind != "string":
                raise InvalidSearch(f"expected a quoted label key after ->>, found {_shown(key)}")
            op, values = self._comparison(f"label {_unquote(key)!r}", allow_null=True)
            return LabelCompare(_unquote(key), op, values)
        raise InvalidSearch(f"payload->'metadata'->'labels' supports @> and ->>, not {_shown(token)}")

    def _label_object(self, token: _Token) -> Mapping[str, str]:
        if token.kind != "string":
            raise InvalidSearch(f"expected a quoted JSON object after @>, found {_shown(token)}")
        try:
            labels = json.loads(_unquote(token))
        except ValueError:
            raise InvalidSearch(f"{_shown(token)} is not a JSON object") from None
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InvalidSearch(f"{_shown(token)} is not a JSON object of strings")
        return labels

    def _comparison(self, what: str, *, allow_null: bool) -> tuple[Op, tuple[str, ...]]:
        token = self._take()
        text = token.text.lower()
        if text in ("=", "<>", "!="):
            op = Op.EQ if text == "=" else Op.NE
            value = self._take()
            if allow_null and op is Op.NE and value.is_word("null"):
                return op, ()
            if value.kind != "string":
                raise InvalidSearch(
                    f"expected a quoted string after {what} {token.text}, found {_shown(value)}"
                )
            return op, (_unquote(value),)
        op = Op.IN
        if text == "not":
            self._expect("in", f"{what} not")
            op = Op.NOT_IN
        elif text != "in":
            raise InvalidSearch(f"the operator {_shown(token)} after {what} is not supported (=, <>, !=, in)")
        self._expect("(", f"{what} {op.value}")
        values: list[str] = []
        while True:
            value = self._take()
            if value.kind != "string":
                raise InvalidSearch(f"expected a quoted string in the list of {what}, found {_shown(value)}")
            values.append(_unquote(value))
            if len(values) > _MAX_VALUES:
                raise InvalidSearch(f"more than {_MAX_VALUES} values in one list")
            separator = self._take()
            if separator.text == ")":
                return op, tuple(values)
            if separator.text != ",":
                raise InvalidSearch(f"expected ',' or ')' in the list of {what}, found {_shown(separator)}")


def _shown(token: _Token) -> str:
    return "the end of the search" if token.kind == "end" else repr(token.text[:60])


#: what a search of resource bundles may compare, and of consumers
BUNDLE_FIELDS = ("id", "name", "consumer_name", "source")
CONSUMER_FIELDS = ("id", "name")


def required_source(node: Node | None) -> str:
    """The source a search requires every match to have (``source = 'x'`` alone or and-ed with the
    rest), else ""."""
    terms = node.terms if isinstance(node, AllOf) else (node,)
    for term in terms:
        if isinstance(term, Compare) and term.field == "source" and term.op is Op.EQ:
            return term.values[0]
    return ""


def parse(text: str, fields: Sequence[str] = BUNDLE_FIELDS) -> Node | None:
    """The tree of a search (None for an empty one); raises ``InvalidSearch``."""
    if len(text.encode()) > MAX_SEARCH_BYTES:
        raise InvalidSearch(f"longer than {MAX_SEARCH_BYTES} bytes")
    if not text.strip():
        return None
    return _Parser(text, fields).parse()
