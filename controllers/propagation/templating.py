"""Renders an ApplicationSet's ``template`` (or a generator spec) with one parameter set.

Called by ``plan`` (one Application per parameter set) and by ``generators`` (cluster ``values``
and the second child of a ``matrix``, which may use the first child's parameters). Two modes,
as in Argo CD:

- fasttemplate (the default): ``{{name}}`` / ``{{ metadata.labels.env }}`` replaced by string
  parameters; a placeholder with no such parameter is left exactly as written, as Argo CD does.
- ``goTemplate: true``: the Go ``text/template`` subset in ``gotemplate``, with
  ``goTemplateOptions: ["missingkey=error"]``.

Every string value and every map key is rendered; numbers and booleans pass through. The
supported subset is listed in ``TEMPLATING.md``. Errors carry the template path
(``spec.source.repoURL``) of the string that failed.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from controllers.propagation import errors, gotemplate, normalization

TemplateError = errors.TemplateError

MISSINGKEY_OPTIONS = ("missingkey=default", "missingkey=invalid", "missingkey=error")

# Argo CD only runs fasttemplate over strings with "{{" and a later "}}" on one line
_LOOKS_TEMPLATED = re.compile(r"\{\{.*\}\}")


@dataclasses.dataclass(frozen=True)
class Mode:
    """How parameters are substituted: ``spec.goTemplate`` and ``spec.goTemplateOptions``."""

    go_template: bool = False
    missing_key_error: bool = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Mode:
        """The mode of an ApplicationSet ``spec``; raises ``TemplateError`` for an unsupported option."""
        go_template = spec.get("goTemplate", False)
        if not isinstance(go_template, bool):
            raise TemplateError("spec.goTemplate", f"must be true or false, not {go_template!r}")
        options = spec.get("goTemplateOptions") or []
        if not isinstance(options, list):
            raise TemplateError("spec.goTemplateOptions", 'must be a list such as ["missingkey=error"]')
        missing_key_error = False
        for i, option in enumerate(options):
            if option == "missingkey=zero":
                raise TemplateError(
                    f"goTemplateOptions[{i}] {option!r}",
                    "not supported: its output depends on Go value types fleetplane does not model; "
                    "use missingkey=error, or default for <no value>",
                )
            if option not in MISSINGKEY_OPTIONS:
                raise TemplateError(
                    f"goTemplateOptions[{i}] {option!r}",
                    f"unknown option; supported: {', '.join(MISSINGKEY_OPTIONS)}",
                )
            missing_key_error = option == "missingkey=error"  # the last missingkey option wins, as in Go
        return cls(go_template=go_template, missing_key_error=missing_key_error)


def render_string(text: str, params: Mapping[str, Any], mode: Mode, *, path: str = "") -> str:
    """``text`` with ``params`` substituted; ``TemplateError`` names ``path`` on failure."""
    if mode.go_template:
        try:
            return gotemplate.render(text, params, missing_key_error=mode.missing_key_error)
        except TemplateError as exc:
            raise exc.at(path, text) from None
    return _fasttemplate(text, params, path)


def render_value(value: Any, params: Mapping[str, Any], mode: Mode, *, path: str = "") -> Any:
    """A deep copy of ``value`` with every string and map key rendered; ``None`` map values are
    dropped, as Argo CD's renderer drops nil fields."""
    if isinstance(value, str):
        return render_string(value, params, mode, path=path)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            item_path = _join(path, key)
            new_key = (
                render_string(key, params, mode, path=f"{item_path} (key)") if isinstance(key, str) else key
            )
            out[new_key] = render_value(item, params, mode, path=item_path)
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [render_value(item, params, mode, path=f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def render_application(appset_spec: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The Application an ApplicationSet ``spec`` generates for one parameter set, as Argo CD
    renders it: the template rendered (left as written when there are no parameters), Argo CD's
    resources finalizer added when the template has none (unless there are no parameters or
    ``syncPolicy.preserveResourcesOnDeletion``), then ``templatePatch`` rendered and applied as a
    strategic merge patch that cannot change ``spec.project``, and the spec normalised as Argo CD
    stores it (``normalization``).

    Raises ``TemplateError`` for any rendering failure.
    """
    template = appset_spec.get("template")
    if not isinstance(template, Mapping) or not template:
        raise TemplateError(
            "spec.template", "missing; an ApplicationSet needs a template with metadata and spec"
        )
    mode = Mode.from_spec(appset_spec)
    if not params:
        app = copy.deepcopy(dict(template))  # Argo CD leaves the template as written
    else:
        app = dict(render_value(template, params, mode))
        preserve = bool((appset_spec.get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))
        meta = app.setdefault("metadata", {})
        if not meta.get("finalizers") and not preserve:
            meta["finalizers"] = [RESOURCES_FINALIZER]
    patch = appset_spec.get("templatePatch")
    if patch:
        app = _patched(app, patch, params, mode)
    if isinstance(app.get("spec"), Mapping):
        app["spec"] = normalization.normalize_spec(app["spec"])
    return app


RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def _patched(app: dict[str, Any], patch: Any, params: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
    if not isinstance(patch, str):
        raise TemplateError("spec.templatePatch", "must be a string holding YAML or JSON")
    text = render_string(patch, params, mode, path="spec.templatePatch")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError("spec.templatePatch", f"renders to invalid YAML: {exc}", source=text) from None
    if loaded is None:
        return app
    if not isinstance(loaded, Mapping):
        raise TemplateError("spec.templatePatch", "must render to a map of Application fields", source=text)
    project = (app.get("spec") or {}).get("project")
    patched = strategic_merge(app, loaded)
    if isinstance(patched.get("spec"), dict):
        patched["spec"]["project"] = project  # a patch may not move an Application to another project
    return patched


#: the Application's lists a strategic merge patch merges (ObjectMeta's finalizers, as a set);
#: every other list is replaced
_MERGED_LISTS = {("metadata", "finalizers")}


def strategic_merge(
    base: Mapping[str, Any], patch: Mapping[str, Any], at: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Kubernetes' strategic merge patch for an Application: maps merge key by key, ``null``
    removes a key, lists are replaced, ``metadata.finalizers`` gains the patch's new items."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        where = (*at, str(key))
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = strategic_merge(out[key], value, where)
        elif where in _MERGED_LISTS and isinstance(value, list) and isinstance(out.get(key), list):
            # the patch's items first, then the others in their order, as Kubernetes merges them
            out[key] = list(value) + [v for v in out[key] if v not in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _join(path: str, key: Any) -> str:
    text = str(key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text):
        return f"{path}.{text}" if path else text
    return f'{path}["{text}"]'


def _fasttemplate(text: str, params: Mapping[str, Any], path: str) -> str:
    if not _LOOKS_TEMPLATED.search(text):
        return text
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError("{{", "a placeholder is not closed with }}", path=path, source=text)
        out.append(text[pos:start])
        tag = text[start + 2 : end]
        replacement = params.get(tag.strip())
        # only string parameters substitute; anything else stays as written, as in Argo CD
        out.append(replacement if isinstance(replacement, str) and tag.strip() else "{{" + tag + "}}")
        pos = end + 2
