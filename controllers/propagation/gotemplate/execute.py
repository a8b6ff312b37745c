"""Runs a parsed Go template against JSON-shaped data, with Go's semantics for the supported subset.

Called by ``controllers.propagation.gotemplate.render``. Dot starts as the parameter map; a missing
map key gives nil (printed ``<no value>``, and so do its fields) or, with ``missingkey=error``, an
error; a field of a null value is an error; ``range`` walks lists in order and maps in sorted key order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from controllers.propagation import errors
from controllers.propagation.gotemplate import functions, parse, values


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL = object()  # no piped value reaches this command


class Executor:
    """One template execution: the variable stack and the ``missingkey`` policy."""

    def __init__(self, root: Any, *, source: str, missing_key_error: bool) -> None:
        self._vars: list[tuple[str, Any]] = [("$", root)]
        self._source = source
        self._missing_key_error = missing_key_error

    def run(self, nodes: tuple[parse.Node, ...], dot: Any) -> str:
        out: list[str] = []
        self._walk(nodes, dot, out)
        return "".join(out)

    def _error(self, construct: str, detail: str) -> errors.TemplateError:
        return errors.TemplateError(construct, detail, source=self._source)

    # --- statements ---

    def _walk(self, nodes: tuple[parse.Node, ...], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, parse.TextNode):
                out.append(node.text)
            elif isinstance(node, parse.ActionNode):
                value = self._pipeline(node.pipe, dot)
                if not node.pipe.decl:  # a declaration prints nothing, as in Go
                    out.append(values.print_value(value))
            elif isinstance(node, parse.IfNode):
                self._if(node, dot, out)
            elif isinstance(node, parse.WithNode):
                self._with(node, dot, out)
            elif isinstance(node, parse.RangeNode):
                self._range(node, dot, out)
            elif isinstance(node, parse.BreakNode):
                raise _Break
            elif isinstance(node, parse.ContinueNode):
                raise _Continue

    def _if(self, node: parse.IfNode, dot: Any, out: list[str]) -> None:
        mark = len(self._vars)
        try:
            for condition, body in node.branches:
                if values.truth(self._pipeline(condition, dot)):
                    self._walk(body, dot, out)
                    return
            if node.else_body is not None:
                self._walk(node.else_body, dot, out)
        finally:
            del self._vars[mark:]

    def _with(self, node: parse.WithNode, dot: Any, out: list[str]) -> None:
        mark = len(self._vars)
        try:
            value = self._pipeline(node.pipe, dot)
            if values.truth(value):
                self._walk(node.body, value, out)
            elif node.else_body is not None:
                self._walk(node.else_body, dot, out)
        finally:
            del self._vars[mark:]

    def _range(self, node: parse.RangeNode, dot: Any, out: list[str]) -> None:
        mark = len(self._vars)
        pipe = parse.Pipeline(node.pipe.cmds)  # the range variables are set per item, not to the list
        collection = self._pipeline(pipe, dot)
        if isinstance(collection, int) and not isinstance(collection, bool) and len(node.pipe.decl) == 2:
            raise self._error(node.source, "can't use two variables to range over an integer")
        ran = False
        try:
            for key, item in self._items(collection, node.source):
                ran = True
                if len(node.pipe.decl) == 1:
                    self._vars.append((node.pipe.decl[0], item))
                elif len(node.pipe.decl) == 2:
                    self._vars.extend(((node.pipe.decl[0], key), (node.pipe.decl[1], item)))
                try:
                    self._walk(node.body, item, out)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self._vars[mark:]
            if not ran and node.else_body is not None:
                self._walk(node.else_body, dot, out)
        finally:
            del self._vars[mark:]

    def _items(self, collection: Any, source: str) -> Iterator[tuple[Any, Any]]:
        if collection is None:
            return iter(())  # ranging over a missing value runs {{else}}, as in Go
        if isinstance(collection, list | tuple):
            return iter(enumerate(collection))
        if isinstance(collection, dict):
            return iter((k, collection[k]) for k in sorted(collection, key=str))
        if isinstance(collection, int) and not isinstance(collection, bool):
            return iter((i, i) for i in range(collection))
        raise self._error(
            source, f"range can't iterate over {values.format_v(collection)} ({values.go_type(collection)})"
        )

    # --- expressions ---

    def _pipeline(self, pipe: parse.Pipeline, dot: Any) -> Any:
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, value)
        if pipe.is_assign:
            for name in pipe.decl:
                index = max(i for i, (n, _) in enumerate(self._vars) if n == name)
                self._vars[index] = (name, value)
        else:
            for name in pipe.decl:
                self._vars.append((name, value))
        return value

    def _command(self, cmd: parse.Command, dot: Any, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, parse.Function):
            return self._call(first.name, cmd.args[1:], dot, final)
        if isinstance(first, parse.Nil):
            raise self._error("nil", "nil is not a command")
        if len(cmd.args) > 1 or final is not _NO_FINAL:
            raise self._error(_describe(first), "can't give argument to non-function")
        return self._operand(first, dot)

    def _call(self, name: str, arg_nodes: tuple[parse.Operand, ...], dot: Any, final: Any) -> Any:
        spec = functions.FUNCTIONS[name]
        count = len(arg_nodes) + (final is not _NO_FINAL)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            wanted = str(spec.min_args) if spec.min_args == spec.max_args else f"at least {spec.min_args}"
            if spec.max_args is not None and spec.max_args != spec.min_args:
                wanted = f"{spec.min_args} to {spec.max_args}"
            raise self._error(f"function {name!r}", f"wrong number of args: want {wanted}, got {count}")
        if name in ("and", "or"):
            return self._and_or(name, arg_nodes, dot, final)
        args = [self._operand(node, dot) for node in arg_nodes]
        if final is not _NO_FINAL:
            args.append(final)
        try:
            return spec.impl(*args)
        except functions.FunctionError as exc:
            raise self._error(f"function {name!r}", str(exc)) from None

    def _and_or(self, name: str, arg_nodes: tuple[parse.Operand, ...], dot: Any, final: Any) -> Any:
        # Go evaluates and/or lazily: ``and .a .a.b`` does not fail when .a is nil
        stop_on = name == "or"
        value: Any = None
        pending = list(arg_nodes)
        while pending:
            value = self._operand(pending.pop(0), dot)
            if values.truth(value) == stop_on:
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def _operand(self, node: parse.Operand, dot: Any) -> Any:
        if isinstance(node, parse.Field):
            return self._chain(dot, node.chain, ".")
        if isinstance(node, parse.Dot):
            return dot
        if isinstance(node, parse.Variable):
            value = next(v for n, v in reversed(self._vars) if n == node.name)
            return self._chain(value, node.chain, node.name)
        if isinstance(node, parse.Literal):
            return node.value
        if isinstance(node, parse.Nil):
            return None
        if isinstance(node, parse.SubPipeline):
            return self._chain(self._pipeline(node.pipe, dot), node.chain, "(...)")
        raise self._error(_describe(node), "a function name cannot be used as a value; call it")

    def _chain(self, value: Any, chain: tuple[str, ...], start: str) -> Any:
        """Go's field chain: a missing map key is an invalid value, whose fields are invalid too
        (``<no value>``); a present nil has no fields (``nil pointer evaluating``)."""
        walked = start if start != "." else ""
        missing = False
        for name in chain:
            walked += "." + name
            if missing:
                if self._missing_key_error:
                    raise self._error(walked, f'nil data; no entry for key "{name}"')
            elif isinstance(value, dict):
                if name in value:
                    value = value[name]
                elif self._missing_key_error:
                    raise self._error(
                        walked, f'map has no entry for key "{name}" (goTemplateOptions has missingkey=error)'
                    )
                else:
                    missing, value = True, None
            elif value is None:
                raise self._error(
                    walked, f"nil pointer evaluating interface {{}}.{name} (a parent value is null)"
                )
            else:
                raise self._error(walked, f"can't evaluate field {name} in type {values.go_type(value)}")
        return value


def _describe(node: parse.Operand) -> str:
    if isinstance(node, parse.Field):
        return "." + ".".join(node.chain)
    if isinstance(node, parse.Variable):
        return node.name + "".join("." + c for c in node.chain)
    if isinstance(node, parse.Function):
        return node.name
    if isinstance(node, parse.Literal):
        return repr(node.value)
    return type(node).__name__
