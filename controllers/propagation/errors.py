"""The errors of the propagation logic: each names the field at fault and, where it can, the fix.

Raised by ``generators``, ``templating`` (and its ``gotemplate`` engine), ``selectors``, ``plan``
and ``rollout``; the kopf handlers turn them into ApplicationSet conditions, so their messages are
written for the person who wrote the ApplicationSet.
"""

from __future__ import annotations


class PropagationError(Exception):
    """Base class: something in an ApplicationSet (or its inputs) cannot be propagated."""


class SelectorError(PropagationError):
    """A label selector is malformed (unknown operator, values where none belong, ...)."""


class GeneratorError(PropagationError):
    """A generator cannot produce parameters; ``path`` is where in the spec, e.g.
    ``spec.generators[0].matrix.generators[1].clusters``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class TemplateError(PropagationError):
    """A template cannot be rendered.

    ``construct`` names the offending piece (``function "sha256sum"``, ``{{define}}``,
    ``missingkey=zero``...), ``path`` where it sits in the template (``spec.source.repoURL``),
    ``source`` the template text being rendered.
    """

    def __init__(self, construct: str, detail: str, *, path: str = "", source: str | None = None) -> None:
        self.construct = construct
        self.detail = detail
        self.path = path
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = f"{where}{self.construct}: {self.detail}"
        if self.source is not None:
            shown = self.source if len(self.source) <= 200 else self.source[:197] + "..."
            text += f" (in template {shown!r})"
        return text

    def at(self, path: str, source: str | None = None) -> TemplateError:
        """The same error, located at ``path`` (keeps an inner location if one was set)."""
        return TemplateError(
            self.construct,
            self.detail,
            path=self.path or path,
            source=self.source if self.source is not None else source,
        )


class PlanError(PropagationError):
    """The ApplicationSet as a whole cannot be planned (not opted in, no uid, bad strategy...)."""


class RolloutError(PropagationError):
    """``spec.strategy`` is malformed."""
