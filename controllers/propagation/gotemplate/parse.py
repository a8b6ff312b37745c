"""Parses lexed Go template items into a small tree: text, actions, if/else if/else, range, with.

Called by ``execute`` (through a cache, so an ApplicationSet's template strings are parsed once
however many clusters it targets). Anything outside the supported subset is rejected here, at
parse time, with a ``TemplateError`` naming the construct: ``define``/``template``/``block``,
``else with``, unknown functions, character constants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any, TypeAlias

from controllers.propagation import errors
from controllers.propagation.gotemplate import lex

_UNSUPPORTED_ACTIONS = {
    "define": "{{define}} (named templates)",
    "template": "{{template}} (named templates)",
    "block": "{{block}} (named templates)",
}
_CONTROL_WORDS = {"if", "else", "end", "range", "with", "break", "continue", *_UNSUPPORTED_ACTIONS}


# --- the tree --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """``.a.b``: a chain of map keys looked up on dot."""

    chain: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Dot:
    """``.``"""


@dataclasses.dataclass(frozen=True, slots=True)
class Variable:
    """``$x.a.b`` (``$`` alone is the root data)."""

    name: str
    chain: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Function:
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Nil:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class SubPipeline:
    """``( pipeline ).a.b``"""

    pipe: Pipeline
    chain: tuple[str, ...] = ()


Operand: TypeAlias = Field | Dot | Variable | Function | Literal | Nil | SubPipeline


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Operand, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    cmds: tuple[Command, ...]
    decl: tuple[str, ...] = ()
    #: ``$x = ...`` assigns an existing variable; ``$x := ...`` declares a new one
    is_assign: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class TextNode:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class ActionNode:
    pipe: Pipeline
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class IfNode:
    #: (condition, body) for ``if`` and each ``else if``
    branches: tuple[tuple[Pipeline, tuple[Node, ...]], ...]
    else_body: tuple[Node, ...] | None
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class RangeNode:
    pipe: Pipeline
    body: tuple[Node, ...]
    else_body: tuple[Node, ...] | None
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class WithNode:
    pipe: Pipeline
    body: tuple[Node, ...]
    else_body: tuple[Node, ...] | None
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class BreakNode:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ContinueNode:
    pass


Node: TypeAlias = TextNode | ActionNode | IfNode | RangeNode | WithNode | BreakNode | ContinueNode


# --- the parser ------------------------------------------------------------------------------------


def parse(source: str, functions: Collection[str]) -> tuple[Node, ...]:
    """The tree of ``source``; ``functions`` are the names callable from the template."""
    return _Parser(lex.lex(source), functions, source).parse_all()


class _Parser:
    def __init__(self, items: list[lex.Text | lex.Action], functions: Collection[str], source: str) -> None:
        self._items = items
        self._pos = 0
        self._functions = functions
        self._source = source
        self._range_depth = 0
        # variables in scope at parse time, so typos fail even in branches that never run
        self._vars: list[str] = ["$"]

    def parse_all(self) -> tuple[Node, ...]:
        nodes, stop = self._parse_list(())
        assert stop is None
        return nodes

    def _error(self, construct: str, detail: str) -> errors.TemplateError:
        return errors.TemplateError(construct, detail, source=self._source)

    def _parse_list(self, stops: Collection[str]) -> tuple[tuple[Node, ...], lex.Action | None]:
        """Nodes up to one of the ``stops`` keywords (``else``/``end``), which is returned."""
        nodes: list[Node] = []
        while self._pos < len(self._items):
            item = self._items[self._pos]
            self._pos += 1
            if isinstance(item, lex.Text):
                nodes.append(TextNode(item.text))
                continue
            keyword = _keyword(item)
            if keyword in stops:
                return tuple(nodes), item
            nodes.append(self._parse_action(item, keyword))
        if stops:
            raise self._error(
                "{{end}}", "unexpected end of template: an {{if}}, {{range}} or {{with}} is not closed"
            )
        return tuple(nodes), None

    def _parse_action(self, action: lex.Action, keyword: str | None) -> Node:
        if keyword is None:
            if not action.tokens:
                raise self._error("{{}}", "missing value for command (empty action)")
            return ActionNode(
                self._parse_pipeline(list(action.tokens), "command", allow_decl=1), action.source
            )
        if keyword in _UNSUPPORTED_ACTIONS:
            raise self._error(
                _UNSUPPORTED_ACTIONS[keyword], "not supported by fleetplane's goTemplate subset"
            )
        if keyword in ("if", "with"):
            return self._parse_if_with(action, keyword)
        if keyword == "range":
            return self._parse_range(action)
        if keyword in ("break", "continue"):
            if len(action.tokens) != 1:
                raise self._error("{{" + keyword + "}}", "takes no arguments")
            if not self._range_depth:
                raise self._error("{{" + keyword + "}}", "is only allowed inside {{range}}")
            return BreakNode() if keyword == "break" else ContinueNode()
        raise self._error(
            "{{" + keyword + "}}", "unexpected here; it has no matching {{if}}, {{range}} or {{with}}"
        )

    def _parse_if_with(self, action: lex.Action, keyword: str) -> Node:
        mark = len(self._vars)
        branches: list[tuple[Pipeline, tuple[Node, ...]]] = []
        tokens = list(action.tokens[1:])
        else_body: tuple[Node, ...] | None = None
        while True:
            pipe = self._parse_pipeline(tokens, keyword, allow_decl=1)
            body, stop = self._parse_list(("else", "end"))
            branches.append((pipe, body))
            assert stop is not None
            if _keyword(stop) == "end":
                break
            rest = list(stop.tokens[1:])
            if rest and rest[0].kind == "ident" and rest[0].value == keyword == "if":
                tokens = rest[1:]  # {{else if ...}} chains another branch
                continue
            if rest:
                construct = "{{else " + rest[0].value + "}}"
                raise self._error(
                    construct, "not supported; only {{else}} and {{else if ...}} (inside {{if}})"
                )
            else_body, stop = self._parse_list(("end",))
            break
        del self._vars[mark:]
        if keyword == "with":
            return WithNode(branches[0][0], branches[0][1], else_body, action.source)
        return IfNode(tuple(branches), else_body, action.source)

    def _parse_range(self, action: lex.Action) -> RangeNode:
        mark = len(self._vars)
        pipe = self._parse_pipeline(list(action.tokens[1:]), "range", allow_decl=2)
        self._range_depth += 1
        body, stop = self._parse_list(("else", "end"))
        self._range_depth -= 1
        else_body = None
        assert stop is not None
        if _keyword(stop) == "else":
            if len(stop.tokens) > 1:
                raise self._error(
                    "{{else " + stop.tokens[1].value + "}}", "not allowed in {{range}}; use {{else}}"
                )
            else_body, _ = self._parse_list(("end",))
        del self._vars[mark:]
        return RangeNode(pipe, body, else_body, action.source)

    # --- pipelines ---

    def _parse_pipeline(self, tokens: list[lex.Token], context: str, *, allow_decl: int) -> Pipeline:
        decl, is_assign, tokens = self._parse_decl(tokens, context, allow_decl)
        if not tokens:
            raise self._error("{{" + context + "}}", f"missing value for {context}")
        cmds: list[Command] = []
        current: list[lex.Token] = []
        depth = 0
        for token in tokens:
            depth += {"lparen": 1, "rparen": -1}.get(token.kind, 0)
            if token.kind == "pipe" and depth == 0:
                cmds.append(self._parse_command(current))
                current = []
            else:
                current.append(token)
        cmds.append(self._parse_command(current))
        if is_assign:
            for name in decl:
                if name not in self._vars:
                    raise self._error(
                        f"variable {name}", "undefined; declare it with := before assigning with ="
                    )
        else:
            self._vars.extend(decl)
        return Pipeline(tuple(cmds), tuple(decl), is_assign)

    def _parse_decl(
        self, tokens: list[lex.Token], context: str, allow_decl: int
    ) -> tuple[list[str], bool, list[lex.Token]]:
        kinds = [t.kind for t in tokens[:4]]
        if kinds[:2] in (["var", "declare"], ["var", "assign"]):
            return [tokens[0].value], kinds[1] == "assign", tokens[2:]
        if kinds == ["var", "comma", "var", "declare"]:
            if allow_decl < 2:
                raise self._error(
                    f"{tokens[0].value}, {tokens[2].value} :=", "two variables are only allowed in {{range}}"
                )
            return [tokens[0].value, tokens[2].value], False, tokens[4:]
        return [], False, tokens

    def _parse_command(self, tokens: list[lex.Token]) -> Command:
        if not tokens:
            raise self._error("pipeline", "missing command (an empty command between | or parentheses)")
        operands: list[Operand] = []
        i = 0
        while i < len(tokens):
            operand, i = self._parse_operand(tokens, i)
            operands.append(operand)
        return Command(tuple(operands))

    def _parse_operand(self, tokens: list[lex.Token], i: int) -> tuple[Operand, int]:
        token = tokens[i]
        i += 1
        operand: Operand
        if token.kind == "field":
            chain, i = _chain(tokens, i)
            return Field((token.value, *chain)), i
        if token.kind == "var":
            if token.value not in self._vars:
                raise self._error(f"variable {token.value}", "undefined variable")
            chain, i = _chain(tokens, i)
            return Variable(token.value, chain), i
        if token.kind == "lparen":
            depth, end = 1, i
            while end < len(tokens) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(tokens[end].kind, 0)
                end += 1
            if depth:
                raise self._error("(", "unclosed left parenthesis")
            inner = self._parse_pipeline(tokens[i : end - 1], "parenthesized pipeline", allow_decl=1)
            chain, end = _chain(tokens, end)
            return SubPipeline(inner, chain), end
        if token.kind == "dot":
            operand = Dot()
        elif token.kind == "ident":
            operand = self._function(token.value)
        elif token.kind == "string":
            operand = Literal(token.value)
        elif token.kind == "number":
            operand = Literal(_number(token.value, self._error))
        elif token.kind == "bool":
            operand = Literal(token.value == "true")
        elif token.kind == "nil":
            operand = Nil()
        else:
            raise self._error(repr(token.value), f"unexpected {token.value!r} in operand")
        if i < len(tokens) and tokens[i].kind == "field" and not tokens[i].spaced:
            raise self._error(
                f"{token.value}.{tokens[i].value}", "fields can only follow ., $variables and (...)"
            )
        return operand, i

    def _function(self, name: str) -> Function:
        if name in _CONTROL_WORDS:
            raise self._error("{{" + name + "}}", f"{name!r} must start its own action")
        if name not in self._functions:
            supported = ", ".join(sorted(self._functions))
            raise self._error(
                f"function {name!r}",
                f"not supported by fleetplane's goTemplate subset; supported functions: {supported}",
            )
        return Function(name)


def _keyword(action: lex.Action) -> str | None:
    if action.tokens and action.tokens[0].kind == "ident" and action.tokens[0].value in _CONTROL_WORDS:
        return action.tokens[0].value
    return None


def _chain(tokens: Sequence[lex.Token], i: int) -> tuple[tuple[str, ...], int]:
    chain: list[str] = []
    while i < len(tokens) and tokens[i].kind == "field" and not tokens[i].spaced:
        chain.append(tokens[i].value)
        i += 1
    return tuple(chain), i


def _number(text: str, error: Any) -> int | float:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    try:
        if body[:2].lower() in ("0x", "0o", "0b"):
            return sign * int(body, 0)
        if any(c in body for c in ".eE"):
            return sign * float(body)
        if len(body) > 1 and body.startswith("0"):
            return sign * int(body, 8)  # Go reads a leading 0 as octal
        return sign * int(body)
    except ValueError:
        raise error("number", f"bad number syntax: {text!r}") from None
