"""Splits a Go ``text/template`` source into text and actions, and actions into tokens.

Called by ``parse``. Follows Go's lexer where it matters to users: ``{{- `` and `` -}}`` trim the
neighbouring whitespace, ``{{/* */}}`` comments, "..." strings with Go escapes, `raw` strings,
numbers with ``0x``/``0o``/``0b`` prefixes and ``_`` separators, fields ``.a.b`` and variables ``$x``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from controllers.propagation import errors

TokenKind = Literal[
    "field", "dot", "var", "ident", "string", "number", "bool", "nil", "char",
    "pipe", "lparen", "rparen", "declare", "assign", "comma",
]  # fmt: skip

_SPACE = " \t\r\n"
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    value: str
    #: whether whitespace separates this token from the previous one (``.a .b`` vs ``.a.b``)
    spaced: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    tokens: tuple[Token, ...]
    #: the action as written, ``{{ ... }}``, for error messages
    source: str


def lex(source: str) -> list[Text | Action]:
    """The items of ``source``; raises ``TemplateError`` for an unclosed action or comment."""
    items: list[Text | Action] = []
    pos = 0
    trim_next_text = False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next_text:
            text = text.lstrip(_SPACE)
        if start < 0:
            if text:
                items.append(Text(text))
            return items
        inner = start + 2
        if source.startswith("-", inner) and inner + 1 < len(source) and source[inner + 1] in _SPACE:
            text = text.rstrip(_SPACE)
            inner += 2
        if text:
            items.append(Text(text))
        if source.startswith("/*", inner):
            pos, trim_next_text = _skip_comment(source, start, inner)
            continue
        tokens, pos, trim_next_text = _lex_action(source, start, inner)
        items.append(Action(tuple(tokens), source[start:pos]))


def _skip_comment(source: str, start: int, inner: int) -> tuple[int, bool]:
    end = source.find("*/", inner + 2)
    if end < 0:
        raise errors.TemplateError("comment", "unclosed comment; close it with */}}", source=source[start:])
    after = end + 2
    if source.startswith("}}", after):
        return after + 2, False
    if after < len(source) and source[after] in _SPACE and source.startswith("-}}", after + 1):
        return after + 4, True
    raise errors.TemplateError(
        "comment", "a comment must end right before the closing }}", source=source[start : end + 2]
    )


def _lex_action(source: str, start: int, pos: int) -> tuple[list[Token], int, bool]:
    tokens: list[Token] = []
    spaced = True
    n = len(source)
    while True:
        if pos >= n:
            raise errors.TemplateError("action", "unclosed action; close it with }}", source=source[start:])
        ch = source[pos]
        if source.startswith("}}", pos):
            return tokens, pos + 2, False
        if ch in _SPACE:
            if source.startswith("-}}", pos + 1):
                return tokens, pos + 4, True
            pos += 1
            spaced = True
            continue
        token, pos = _lex_token(source, start, pos, spaced)
        tokens.append(token)
        spaced = False


def _lex_token(source: str, start: int, pos: int, spaced: bool) -> tuple[Token, int]:
    ch = source[pos]
    nxt = source[pos + 1] if pos + 1 < len(source) else ""
    if ch == '"':
        value, end = _lex_quoted(source, start, pos)
        return Token("string", value, spaced), end
    if ch == "`":
        end = source.find("`", pos + 1)
        if end < 0:
            raise errors.TemplateError("raw string", "unterminated raw string", source=source[start:])
        return Token("string", source[pos + 1 : end], spaced), end + 1
    if ch == "'":
        raise errors.TemplateError(
            "character constant",
            "character constants ('x') are not supported; use a string (\"x\")",
            source=source[start:],
        )
    if ch == "." and (nxt.isalpha() or nxt == "_"):
        end = _ident_end(source, pos + 1)
        return Token("field", source[pos + 1 : end], spaced), end
    if ch == "$":
        end = _ident_end(source, pos + 1)
        return Token("var", source[pos:end], spaced), end
    if ch.isdigit() or (ch in "+-." and nxt.isdigit()) or (ch in "+-" and nxt == "."):
        match = _NUMBER.match(source, pos)
        end = match.end() if match else pos
        if not match or (end < len(source) and (source[end].isalnum() or source[end] == "_")):
            bad_end = end
            while bad_end < len(source) and (source[bad_end].isalnum() or source[bad_end] in "._"):
                bad_end += 1
            raise errors.TemplateError(
                "number", f"bad number syntax: {source[pos:bad_end]!r}", source=source[start:]
            )
        return Token("number", source[pos:end], spaced), end
    if ch == ".":
        return Token("dot", ".", spaced), pos + 1
    if ch.isalpha() or ch == "_":
        end = _ident_end(source, pos)
        word = source[pos:end]
        kind: TokenKind = "bool" if word in ("true", "false") else "nil" if word == "nil" else "ident"
        return Token(kind, word, spaced), end
    simple: dict[str, TokenKind] = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}
    if ch == ":" and nxt == "=":
        return Token("declare", ":=", spaced), pos + 2
    if ch in simple:
        return Token(simple[ch], ch, spaced), pos + 1
    raise errors.TemplateError("action", f"unexpected character {ch!r} in action", source=source[start:])


def _ident_end(source: str, pos: int) -> int:
    while pos < len(source) and (source[pos].isalnum() or source[pos] == "_"):
        pos += 1
    return pos


def _lex_quoted(source: str, start: int, pos: int) -> tuple[str, int]:
    out: list[str] = []
    i = pos + 1
    while i < len(source):
        ch = source[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = source[i + 1] if i + 1 < len(source) else ""
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(esc)
        if width is not None:
            digits = source[i + 2 : i + 2 + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(int(digits, 16)))
                i += 2 + width
                continue
        elif esc in "01234567" and esc:
            digits = source[i + 1 : i + 4]
            if len(digits) == 3 and all(c in "01234567" for c in digits):
                out.append(chr(int(digits, 8)))
                i += 4
                continue
        raise errors.TemplateError(
            "string", f"invalid escape \\{esc} in quoted string", source=source[start:]
        )
    raise errors.TemplateError("string", "unterminated quoted string", source=source[start:])
