"""The functions a fleetplane goTemplate may call: Go's builtins, a sprig subset, Argo CD's ``normalize``.

Called by ``execute`` (and ``parse``, for the names). Each function keeps the argument order and
the result of the original, so a template that works in Argo CD renders the same here; a wrong
argument type is an error, as it is in Go (``lower 3`` fails rather than printing ``3``).
``and`` and ``or`` short-circuit, so ``execute`` evaluates them itself; ``printf`` lives in ``printf``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from controllers.propagation import inventory
from controllers.propagation.gotemplate import printf, values

FunctionError = printf.FunctionError


@dataclasses.dataclass(frozen=True)
class Func:
    impl: Callable[..., Any]
    min_args: int
    #: ``None``: any number of arguments from ``min_args`` on
    max_args: int | None


# --- argument checks, worded like Go's ---------------------------------------------------------------


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise FunctionError("invalid value; expected string (the value is missing or null)")
    raise FunctionError(f"wrong type for value; expected string; got {values.go_type(value)}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FunctionError(f"wrong type for value; expected int; got {values.go_type(value)}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise FunctionError(f"wrong type for value; expected bool; got {values.go_type(value)}")


def strval(value: Any) -> str:
    """sprig's string conversion: strings as they are, anything else as ``%v``."""
    return value if isinstance(value, str) else values.format_v(value)


def empty(value: Any) -> bool:
    """sprig's ``empty``: nil, false, 0 and empty strings, lists and maps."""
    return not values.truth(value)


# --- Go builtins ---------------------------------------------------------------------------------------


def _not(value: Any) -> bool:
    return not values.truth(value)


def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))  # Go's len of a string counts bytes
    if isinstance(value, list | tuple | dict):
        return len(value)
    if value is None:
        raise FunctionError("len of nil (the value is missing or null)")
    raise FunctionError(f"len of type {values.go_type(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise FunctionError(f"value has type {values.go_type(key)}; should be string")
            item = item.get(key)  # a missing key gives nil, even with missingkey=error, as in Go
        elif isinstance(item, list | tuple | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FunctionError(f"cannot index slice/array with type {values.go_type(key)}")
            seq: Any = item.encode("utf-8") if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise FunctionError(f"index out of range: {key}")
            item = seq[key]
        elif item is None:
            raise FunctionError("index of untyped nil (the value is missing or null)")
        else:
            raise FunctionError(f"can't index item of type {values.go_type(item)}")
    return item


def _print(*args: Any) -> str:
    out: list[str] = []
    for i, arg in enumerate(args):
        # fmt.Sprint puts a space between operands when neither is a string
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(values.format_v(arg))
    return "".join(out)


def _println(*args: Any) -> str:
    return " ".join(values.format_v(a) for a in args) + "\n"


def _basic_kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"  # Go compares an int with an int only: parameters' numbers are float64
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise FunctionError(f"non-comparable type {values.go_type(value)}; compare strings, numbers or booleans")


def _eq(first: Any, *others: Any) -> bool:
    kind = _basic_kind(first)
    for other in others:
        other_kind = _basic_kind(other)
        if kind == "nil" or other_kind == "nil":
            if first is None and other is None:
                return True
            continue
        if kind != other_kind:
            raise FunctionError(
                f"incompatible types for comparison: {values.go_type(first)} and {values.go_type(other)}"
            )
        if first == other:
            return True
    return False


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _ordered(first: Any, second: Any) -> tuple[Any, Any]:
    kinds = (_basic_kind(first), _basic_kind(second))
    if "nil" in kinds or "bool" in kinds:
        raise FunctionError("invalid type for comparison (only strings and numbers are ordered)")
    if kinds[0] != kinds[1]:
        raise FunctionError(
            f"incompatible types for comparison: {values.go_type(first)} and {values.go_type(second)}"
        )
    return first, second


def _lt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x < y)


def _le(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x <= y)


def _gt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x > y)


def _ge(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x >= y)


# --- sprig subset (argument order is sprig's: the piped value comes last) ----------------------------------


def _default(default: Any, *given: Any) -> Any:
    if not given or empty(given[0]):
        return default
    return given[0]


def _coalesce(*candidates: Any) -> Any:
    return next((c for c in candidates if not empty(c)), None)


def _ternary(if_true: Any, if_false: Any, condition: Any) -> Any:
    return if_true if _bool(condition) else if_false


def _trunc(count: Any, text: Any) -> str:
    c, s = _int(count), _str(text)
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c :]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


def _quote(*args: Any) -> str:
    return " ".join(values.go_quote(strval(a)) for a in args if a is not None)


def _squote(*args: Any) -> str:
    return " ".join(f"'{strval(a)}'" for a in args if a is not None)


def _to_json(value: Any) -> str:
    try:
        return values.to_json(value)
    except ValueError as exc:
        raise FunctionError(str(exc)) from None


def _strslice(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [strval(v) for v in value if v is not None]
    if value is None:
        return []
    return [strval(value)]


def _join(sep: Any, items: Any) -> str:
    return _str(sep).join(_strslice(items))


def _split_list(sep: Any, text: Any) -> list[Any]:
    s, t = _str(sep), _str(text)
    return list(t) if s == "" else list(t.split(s))


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _simple_case(text: str, upper: bool) -> str:
    """Go's ``strings.ToUpper``/``ToLower`` map rune by rune; a character whose case mapping is
    several characters (``ß`` -> ``SS`` in Python) is left as it is."""
    out = []
    for ch in text:
        mapped = ch.upper() if upper else ch.lower()
        out.append(mapped if len(mapped) == 1 else ch)
    return "".join(out)


def _str1(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda a: fn(_str(a))


def _str2(fn: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: fn(_str(a), _str(b))


FUNCTIONS: Mapping[str, Func] = {
    # Go text/template builtins (``and``/``or`` are evaluated lazily by ``execute``)
    "and": Func(lambda *a: a[-1], 1, None),
    "or": Func(lambda *a: a[-1], 1, None),
    "not": Func(_not, 1, 1),
    "len": Func(_len, 1, 1),
    "index": Func(_index, 1, None),
    "print": Func(_print, 0, None),
    "printf": Func(lambda f, *a: printf.sprintf(_str(f), list(a)), 1, None),
    "println": Func(_println, 0, None),
    "eq": Func(_eq, 2, None),
    "ne": Func(_ne, 2, 2),
    "lt": Func(_lt, 2, 2),
    "le": Func(_le, 2, 2),
    "gt": Func(_gt, 2, 2),
    "ge": Func(_ge, 2, 2),
    # sprig
    "default": Func(_default, 1, None),
    "empty": Func(empty, 1, 1),
    "coalesce": Func(_coalesce, 0, None),
    "ternary": Func(_ternary, 3, 3),
    "lower": Func(_str1(lambda s: _simple_case(s, upper=False)), 1, 1),
    "upper": Func(_str1(lambda s: _simple_case(s, upper=True)), 1, 1),
    "trim": Func(_str1(lambda s: s.strip(" \t\n\r\v\f\u0085\u00a0")), 1, 1),
    "trimAll": Func(_str2(lambda cutset, s: s.strip(cutset)), 2, 2),
    "trimPrefix": Func(_str2(lambda prefix, s: s.removeprefix(prefix)), 2, 2),
    "trimSuffix": Func(_str2(lambda suffix, s: s.removesuffix(suffix)), 2, 2),
    "replace": Func(lambda old, new, src: _str(src).replace(_str(old), _str(new)), 3, 3),
    "trunc": Func(_trunc, 2, 2),
    "quote": Func(_quote, 0, None),
    "squote": Func(_squote, 0, None),
    "contains": Func(_str2(lambda sub, s: sub in s), 2, 2),
    "hasPrefix": Func(_str2(lambda prefix, s: s.startswith(prefix)), 2, 2),
    "hasSuffix": Func(_str2(lambda suffix, s: s.endswith(suffix)), 2, 2),
    "toJson": Func(_to_json, 1, 1),
    "toString": Func(strval, 1, 1),
    "join": Func(_join, 2, 2),
    "splitList": Func(_split_list, 2, 2),
    "list": Func(lambda *a: list(a), 0, None),
    "dict": Func(_dict, 0, None),
    # Argo CD's own
    "normalize": Func(_str1(inventory.normalize_name), 1, 1),
}
