"""How Go's ``fmt``, ``strconv`` and ``encoding/json`` show the values a template works with.

Called by ``execute`` (printing ``{{ .x }}``, truth of ``if``) and ``functions`` (``printf``,
``quote``, ``toJson``...). Values are the JSON-shaped Python values of the parameters: ``None``,
``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with string keys.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

NO_VALUE = "<no value>"


def go_type(value: Any) -> str:
    """The Go type name a user would see in an error message for ``value``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def print_value(value: Any) -> str:
    """What ``{{ value }}`` writes: ``<no value>`` for nil, otherwise ``fmt.Sprint``."""
    if value is None:
        return NO_VALUE
    return format_v(value)


def format_v(value: Any) -> str:
    """``fmt``'s ``%v``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float_g(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{format_v(k)}:{format_v(value[k])}" for k in sorted(value, key=str)) + "]"
    return str(value)


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of ``abs(value)`` and its decimal exponent."""
    sign_digits_exp = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in sign_digits_exp.digits) or "0"
    exponent = int(sign_digits_exp.exponent) + len(digits) - 1  # exponent of the first digit
    return digits, exponent


def _fixed(digits: str, exp: int, sign: str) -> str:
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return f"{sign}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def _exponent(digits: str, exp: int, sign: str) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    return None


def format_float_g(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` (what ``%v`` prints): shortest digits, exponent form
    when the exponent is below -4 or at least 6, so ``1e6`` prints as ``1e+06``."""
    special = _special(value)
    if special is not None:
        return special
    digits, exp = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    return _exponent(digits, exp, sign) if exp < -4 or exp >= 6 else _fixed(digits, exp, sign)


def format_float_json(value: float) -> str:
    """How ``encoding/json`` writes a float64: positional from 1e-6 up to 1e21, else ``1e+21``/``1e-7``."""
    special = _special(value)
    if special is not None:
        return special
    digits, exp = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    if 1e-6 <= abs(value) < 1e21:
        return _fixed(digits, exp, sign)
    text = _exponent(digits, exp, sign)
    return re.sub(r"e-0(\d)$", r"e-\1", text)


def go_quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal, printable characters kept as they are."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def to_json(value: Any) -> str:
    """``encoding/json.Marshal``: sorted keys, no spaces, Go's float format, and ``<``, ``>``, ``&``,
    U+2028 and U+2029 escaped as Go does for HTML safety."""
    text = _json(value)
    for raw, escaped in _JSON_HTML_ESCAPES:
        text = text.replace(raw, escaped)
    return text


_JSON_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _json(value: Any) -> str:
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"json: unsupported value: {format_float_g(value)}")
        return format_float_json(value)
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    raise ValueError(f"json: unsupported type: {go_type(value)}")
