"""A documented subset of Go's ``text/template`` (plus sprig and Argo CD functions), in Python.

Called by ``controllers.propagation.templating`` for ApplicationSets with ``goTemplate: true``.
What is supported, and why this is Python rather than a Go helper, is in
``controllers/propagation/TEMPLATING.md``. Anything outside the subset raises ``TemplateError``
naming the construct; nothing renders silently as blank.
"""

from __future__ import annotations

import functools
from typing import Any

from controllers.propagation.gotemplate import execute, functions, parse


@functools.lru_cache(maxsize=8192)
def compile_template(source: str) -> tuple[parse.Node, ...]:
    """The parsed form of ``source`` (cached: one ApplicationSet renders the same strings per cluster)."""
    return parse.parse(source, functions.FUNCTIONS)


def render(source: str, data: Any, *, missing_key_error: bool = False) -> str:
    """Execute ``source`` with ``data`` as dot; raises ``TemplateError`` (without a path)."""
    if "{{" not in source:
        return source
    nodes = compile_template(source)
    return execute.Executor(data, source=source, missing_key_error=missing_key_error).run(nodes, data)
