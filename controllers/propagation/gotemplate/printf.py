"""Go's ``fmt.Sprintf`` for the verbs ApplicationSet templates use, as the ``printf`` function.

Called by ``functions`` (the ``printf`` template function). Supported: ``%v %s %d %q %t %x %X
%f %e %g %%`` with the ``-``, ``+``, space and ``0`` flags, a width and a precision. A verb that
does not fit its argument prints Go's ``%!d(string=x)``, a missing argument ``%!s(MISSING)``,
extra arguments ``%!(EXTRA string=x)``. The ``#`` flag, ``*`` widths, ``[n]`` argument indexes
and other verbs raise ``FunctionError``.
"""

from __future__ import annotations

from typing import Any

from controllers.propagation.gotemplate import values


class FunctionError(Exception):
    """A function was called with arguments it cannot take; ``execute`` adds where."""


def sprintf(fmt: str, args: list[Any]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use: ``%v %s %d %q %t %x %X %f %e %g %%`` with
    ``-``, ``+``, space and ``0`` flags, width and precision. Mismatches print Go's ``%!d(string=x)``."""
    out: list[str] = []
    i, argi, n = 0, 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "-+ 0#":
            flags += fmt[i]
            i += 1
        width = ""
        while i < n and fmt[i].isdigit():
            width += fmt[i]
            i += 1
        precision: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            digits = ""
            while i < n and fmt[i].isdigit():
                digits += fmt[i]
                i += 1
            precision = int(digits or "0")
        if i < n and fmt[i] in "*[":
            raise FunctionError("printf: '*' widths and [n] argument indexes are not supported")
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_pad(_format_one(verb, arg, flags, precision), flags, width, arg))
    if argi < len(args):
        extra = ", ".join(f"{values.go_type(a)}={values.format_v(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({values.go_type(arg)}={values.format_v(arg)})"


def _format_one(verb: str, arg: Any, flags: str, precision: int | None) -> str:
    if "#" in flags:
        raise FunctionError("printf: the '#' flag (Go-syntax formats) is not supported")
    if verb not in "vsdqtxXfFeEgG":
        raise FunctionError(
            f"printf: verb %{verb} is not supported; use one of %v %s %d %q %t %x %X %f %e %g"
        )
    if isinstance(arg, list | tuple) and verb != "v":
        return "[" + " ".join(_format_one(verb, a, flags, precision) for a in arg) + "]"
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb in "vt" else _bad(verb, arg)
    if isinstance(arg, int):
        return _format_int(verb, arg, flags, precision)
    if isinstance(arg, float):
        return _format_float(verb, arg, flags, precision)
    if isinstance(arg, str):
        if verb in "vs":
            return arg if precision is None else arg[:precision]
        if verb == "q":
            return values.go_quote(arg if precision is None else arg[:precision])
        if verb in "xX":
            text = arg.encode("utf-8").hex()
            return text.upper() if verb == "X" else text
        return _bad(verb, arg)
    if arg is None:
        return "<nil>" if verb == "v" else _bad(verb, arg)
    if isinstance(arg, dict) and verb in "vs":
        return values.format_v(arg)
    return values.format_v(arg) if verb == "v" else _bad(verb, arg)


def _sign(value: float, flags: str) -> str:
    if value < 0:
        return "-"
    return "+" if "+" in flags else " " if " " in flags else ""


def _format_int(verb: str, value: int, flags: str, precision: int | None) -> str:
    if verb in "vd":
        digits = str(abs(value))
    elif verb in "xX":
        digits = format(abs(value), "x" if verb == "x" else "X")
    elif verb in "fFeEgG":
        return _bad(verb, value)
    else:
        raise FunctionError(f"printf: %{verb} of an integer is not supported")
    if precision is not None:
        digits = digits.rjust(precision, "0")
    return _sign(value, flags) + digits


def _format_float(verb: str, value: float, flags: str, precision: int | None) -> str:
    if verb in "sdqxXt":
        return _bad(verb, value)
    sign = _sign(value, flags)
    magnitude = abs(value)
    if verb in "vgG":
        text = values.format_float_g(magnitude) if precision is None else f"{magnitude:.{precision}g}"
        text = text.upper() if verb == "G" else text
    elif verb in "fF":
        text = f"{magnitude:.{6 if precision is None else precision}f}"
    else:
        text = f"{magnitude:.{6 if precision is None else precision}{verb}}"
    return sign + text


def _pad(text: str, flags: str, width: str, arg: Any) -> str:
    if not width or len(text) >= int(width):
        return text
    size = int(width)
    if "-" in flags:
        return text.ljust(size)
    numeric = isinstance(arg, int | float) and not isinstance(arg, bool)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+- " else ""
        return sign + text[len(sign) :].rjust(size - len(sign), "0")
    return text.rjust(size)
