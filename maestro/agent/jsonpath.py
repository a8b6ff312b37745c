"""The subset of Kubernetes JSONPath that status feedback rules use, evaluated on plain dicts.

Called by `feedback` for every `JSONPaths` rule and well-known status path. Paths are written as
OCM's work agent takes them: without the `{}` template braces (`.status.readyReplicas`); braces
and a leading `$` are accepted too. Supported: fields (`.a.b`, `['key.with.dots']`), wildcards
(`.*`, `[*]`), indexes (`[0]`, `[-1]`), slices (`[1:3]`), recursive descent (`..name`) and filters
`[?(@.type=="Ready")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`, or bare `@.field` for "exists").
Missing keys and out-of-range indexes give no result rather than an error (OCM evaluates with
`AllowMissingKeys(true)`); a path outside the subset raises `JsonPathError` naming the position.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from maestro.agent.errors import JsonPathError

_NAME = re.compile(r"(?:\\.|[^.\[\]\\])+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Recursive:
    name: str  # "*" for every descendant


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True, slots=True)
class _Filter:
    left: tuple[_Step, ...]
    op: str | None
    # Either a literal or a relative path (a tuple of steps) evaluated on the same element.
    right: Any


_Step = _Field | _Recursive | _Wildcard | _Index | _Slice | _Filter


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


def find(path: str, obj: Any) -> list[Any]:
    """Every value `path` selects in `obj`, in document order; [] when nothing matches."""
    nodes = [obj]
    for step in compile_path(path):
        nodes = [out for node in nodes for out in _apply(step, node)]
        if not nodes:
            break
    return nodes


@functools.lru_cache(maxsize=1024)
def compile_path(path: str) -> tuple[_Step, ...]:
    """Parse once; the same few paths are evaluated for every object of every bundle."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise JsonPathError(f"empty JSONPath {path!r}")
    steps, pos = _parse_steps(text, 0, path, relative=False)
    if pos != len(text):
        raise JsonPathError(f"unexpected {text[pos]!r} at position {pos} in JSONPath {path!r}")
    return steps


def _parse_steps(text: str, pos: int, path: str, *, relative: bool) -> tuple[tuple[_Step, ...], int]:
    steps: list[_Step] = []
    while pos < len(text):
        char = text[pos]
        if text.startswith("..", pos):
            name, pos = _parse_name(text, pos + 2, path)
            steps.append(_Recursive(name))
        elif char == ".":
            name, pos = _parse_name(text, pos + 1, path)
            steps.append(_Wildcard() if name == "*" else _Field(name))
        elif char == "[":
            step, pos = _parse_bracket(text, pos + 1, path)
            steps.append(step)
        elif relative:
            # Inside a filter a relative path ends at the operator or the closing parenthesis.
            break
        else:
            raise JsonPathError(f"expected '.' or '[' at position {pos} in JSONPath {path!r}")
    return tuple(steps), pos


def _parse_name(text: str, pos: int, path: str) -> tuple[str, int]:
    if text.startswith("*", pos):
        return "*", pos + 1
    match = _NAME.match(text, pos)
    if not match:
        raise JsonPathError(f"expected a field name at position {pos} in JSONPath {path!r}")
    name = match.group(0)
    # Operators end a name inside filters: `@.type=="Ready"`.
    for stop in ("==", "!=", "<", ">", ")", " "):
        cut = name.find(stop)
        if cut > 0:
            name = name[:cut]
    return name.replace("\\.", "."), pos + len(name)


def _parse_bracket(text: str, pos: int, path: str) -> tuple[_Step, int]:
    end_err = JsonPathError(f"unclosed '[' before position {pos} in JSONPath {path!r}")
    if text.startswith("?(", pos):
        return _parse_filter(text, pos + 2, path)
    close = text.find("]", pos)
    if close < 0:
        raise end_err
    inner = text[pos:close].strip()
    if inner == "*":
        return _Wildcard(), close + 1
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _Field(inner[1:-1]), close + 1
    try:
        if ":" in inner:
            parts = [int(p) if p.strip() else None for p in inner.split(":")]
            if len(parts) > 3:
                raise ValueError(inner)
            parts += [None] * (3 - len(parts))
            return _Slice(parts[0], parts[1], parts[2]), close + 1
        return _Index(int(inner)), close + 1
    except ValueError:
        raise JsonPathError(f"bad subscript [{inner}] at position {pos} in JSONPath {path!r}") from None


def _parse_filter(text: str, pos: int, path: str) -> tuple[_Filter, int]:
    pos = _skip_spaces(text, pos)
    left, pos = _parse_operand(text, pos, path)
    if not isinstance(left, tuple):
        raise JsonPathError(f"a filter must start with '@' at position {pos} in JSONPath {path!r}")
    pos = _skip_spaces(text, pos)
    op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
    right: Any = None
    if op is not None:
        pos = _skip_spaces(text, pos + len(op))
        right, pos = _parse_operand(text, pos, path)
        pos = _skip_spaces(text, pos)
    if not text.startswith(")]", pos):
        raise JsonPathError(f"expected ')]' to close the filter at position {pos} in JSONPath {path!r}")
    return _Filter(left, op, right), pos + 2


def _parse_operand(text: str, pos: int, path: str) -> tuple[tuple[_Step, ...] | _Literal, int]:
    if text.startswith("@", pos):
        return _parse_steps(text, pos + 1, path, relative=True)
    if pos < len(text) and text[pos] in "'\"":
        close = text.find(text[pos], pos + 1)
        if close < 0:
            raise JsonPathError(f"unclosed string at position {pos} in JSONPath {path!r}")
        return _Literal(text[pos + 1 : close]), close + 1
    for word, value in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, pos):
            return _Literal(value), pos + len(word)
    match = _NUMBER.match(text, pos)
    if match:
        number = match.group(0)
        return _Literal(float(number) if "." in number else int(number)), match.end()
    raise JsonPathError(f"expected '@', a string, a number or true/false at position {pos} in {path!r}")


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _apply(step: _Step, node: Any) -> Iterator[Any]:
    if isinstance(step, _Field):
        if isinstance(node, dict) and step.name in node:
            yield node[step.name]
    elif isinstance(step, _Wildcard):
        if isinstance(node, dict):
            yield from (node[k] for k in sorted(node))
        elif isinstance(node, list):
            yield from node
    elif isinstance(step, _Index):
        if isinstance(node, list) and -len(node) <= step.index < len(node):
            yield node[step.index]
    elif isinstance(step, _Slice):
        if isinstance(node, list):
            yield from node[step.start : step.stop : step.step]
    elif isinstance(step, _Recursive):
        yield from _descend(step.name, node)
    elif isinstance(node, list):
        yield from (item for item in node if _matches(step, item))


def _descend(name: str, node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if name == "*":
            yield from node.values()
        elif name in node:
            yield node[name]
        children: Any = node.values()
    elif isinstance(node, list):
        if name == "*":
            yield from node
        children = node
    else:
        return
    for child in children:
        yield from _descend(name, child)


def _matches(flt: _Filter, item: Any) -> bool:
    left = _evaluate(flt.left, item)
    if flt.op is None:
        return bool(left)
    right = [flt.right.value] if isinstance(flt.right, _Literal) else _evaluate(flt.right, item)
    if not left or not right:
        return False
    a, b = left[0], right[0]
    if flt.op in ("==", "!="):
        # Go's jsonpath never equates a number with a string or a bool; neither do we (True == 1).
        same = type(a) is type(b) or (_is_number(a) and _is_number(b))
        return (same and a == b) if flt.op == "==" else not (same and a == b)
    comparable = (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))
    return comparable and _OPERATORS[flt.op](a, b)


def _evaluate(steps: tuple[_Step, ...], item: Any) -> list[Any]:
    nodes = [item]
    for step in steps:
        nodes = [out for node in nodes for out in _apply(step, node)]
    return nodes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
