"""The Jinja environment compositions render in: an immutable sandbox with strict undefined
variables whose messages name the whole expression and where to set the value, and the filters
templates use (``toyaml``, ``tojson``, ``b64enc``, ``merge``, ``omit``, ``extend_pod``).

Values are traced: every mapping and list a template reaches remembers the expression it was
reached by (``parameters.network.cidr``), so an undefined one is reported by that expression.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
import yaml
from jinja2 import sandbox

# The variables render.composite_values() gives every template.
VARIABLES = ("composite", "name", "claim", "parameters", "labels", "platform")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Frozen(dict[str, Any]):
    """An object every render writes as it is (the platform's, such as Argo CD's install objects):
    its JSON is made once, not once per composite and pass. Never changed after it is made."""

    __slots__ = ("_fp_json",)
    _fp_json: str

    def json(self) -> str:
        try:
            return self._fp_json
        except AttributeError:
            self._fp_json = json.dumps(self, ensure_ascii=False)
            return self._fp_json


class _Traced(dict[str, Any]):
    """A mapping that remembers the expression it was reached by, for undefined-variable messages."""

    __slots__ = ("_fp_frozen", "_fp_path")
    _fp_path: str
    #: the ``Frozen`` object this one shows, if any
    _fp_frozen: Frozen


class _TracedList(list[Any]):
    __slots__ = ("_fp_path",)
    _fp_path: str

    def __iter__(self) -> Iterator[Any]:
        for i, item in enumerate(list.__iter__(self)):
            yield trace(item, f"{self._fp_path}[{i}]")


def trace(value: Any, path: str) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, _Traced):
        traced: Any = _Traced(value)
        if isinstance(value, Frozen):
            traced._fp_frozen = value
    elif isinstance(value, list) and not isinstance(value, _TracedList):
        traced = _TracedList(value)
    else:
        return value
    traced._fp_path = path
    return traced


def _child_path(parent: Any, key: Any) -> str | None:
    path = getattr(parent, "_fp_path", None)
    if path is None:
        return None
    return f"{path}.{key}" if isinstance(key, str) and _IDENTIFIER.match(key) else f"{path}[{key!r}]"


class _Undefined(jinja2.StrictUndefined):
    """Strict undefined whose message names the whole expression and where to set the value."""

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is jinja2.utils.missing:
            return f"{name!r} is undefined — the template's variables are {', '.join(VARIABLES)}"
        if self._undefined_obj is None:
            return (
                f"None has no attribute {name!r} — guard the expression with {{% if ... %}} "
                "(claim is None for a composite made without a claim)"
            )
        path = getattr(self._undefined_obj, "_fp_path", None)
        if path is None:
            return f"{super()._undefined_message} — check the name, or give it a default with | default(...)"
        what = f"attribute {name!r}" if isinstance(name, str) else f"element {name!r}"
        return f"{path!r} has no {what} — {_fix(path, name)}"


def _fix(path: str, name: Any) -> str:
    full = f"{path}.{name}" if isinstance(name, str) else f"{path}[{name!r}]"
    root = re.split(r"[.\[]", path, maxsplit=1)[0]
    if root == "parameters":
        return f"set spec.{full} on the claim or a default in the Composition"
    if root == "labels":
        return f"set spec.parameters.{full} on the claim, or write labels.get({name!r}) where it is optional"
    if root == "platform" and "[" in path:
        return f"the object has no such field: write .get({name!r}) where it is optional"
    if root == "platform":
        return (
            f"the provisioner was given no {full}: set it in the platform settings "
            "(see fleetplane render --help)"
        )
    if root == "composite":
        return f"set {full.removeprefix('composite.')} on the composite, or guard it with {{% if ... %}}"
    if root == "claim":
        return "the claim offers only name and namespace"
    return "check the name, or give it a default with | default(...)"


class _Environment(sandbox.ImmutableSandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        path = _child_path(obj, attribute)
        return value if path is None or isinstance(value, jinja2.Undefined) else trace(value, path)

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        path = _child_path(obj, argument)
        return value if path is None or isinstance(value, jinja2.Undefined) else trace(value, path)


def environment(source: str, text: str) -> _Environment:
    env = _Environment(
        loader=jinja2.FunctionLoader(lambda name: (text, source, lambda: True) if name == source else None),
        undefined=_Undefined,
        # Block tags on lines of their own leave no blank lines or stray indentation in the YAML.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(
        {
            "toyaml": toyaml,
            "tojson": tojson,
            "b64enc": b64enc,
            "merge": merge,
            "omit": omit,
            "extend_pod": extend_pod,
        }
    )
    return env


@functools.lru_cache(maxsize=64)
def compiled(source: str, text: str) -> jinja2.Template:
    # The operator renders the same few revisions on every reconcile: compile each once.
    return environment(source, text).get_template(source)


def template_line(exc: BaseException, source: str) -> int | None:
    """The innermost template line in the traceback (Jinja rewrites its frames to the template's lines)."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == source:
            line = lineno
    return line


# ---- filters


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


_Dumper.add_representer(_Traced, yaml.representer.SafeRepresenter.represent_dict)
_Dumper.add_representer(_TracedList, yaml.representer.SafeRepresenter.represent_list)


def _plain(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a strict undefined raises here, with its message
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def toyaml(value: Any, indent: int = 0) -> str:
    """Block YAML. With ``indent``, every line is indented by that much and the text starts on a new
    line (Helm's ``toYaml | nindent``), so ``key: {{ x | toyaml(2) }}`` nests ``x`` under ``key``."""
    text = yaml.dump(
        _plain(value),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**16,
    )
    text = text.removesuffix("...\n").rstrip("\n")
    if not indent:
        return text
    pad = " " * indent
    return "\n" + "\n".join(pad + line if line else line for line in text.split("\n"))


def tojson(value: Any) -> str:
    """One line of JSON, which is also YAML: the safe way to write any string or object."""
    frozen = getattr(value, "_fp_frozen", None) if isinstance(value, _Traced) else value
    if isinstance(frozen, Frozen):
        return frozen.json()
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a strict undefined raises here, with its message
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def b64enc(value: Any) -> str:
    """Base64 of a string's UTF-8 bytes, for a Secret's ``data``."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(raw).decode("ascii")


def omit(value: Any, *keys: str) -> dict[str, Any]:
    """A copy of a mapping without ``keys``: ``rule | omit("namespace")``."""
    return {k: v for k, v in _plain(value).items() if k not in keys}


def merge(base: Any, patch: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``patch`` deep-merged over it:
    ``obj | merge({"metadata": {"namespace": ns}})``."""
    return _merge_into(_plain(base), _plain(patch))


def _merge_into(out: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``out``, both fresh copies (``_plain``'s): nothing copied again,
    which matters for a template merging into each of Argo CD's objects for every composite."""
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            out[key] = _merge_into(current, value)
        else:
            out[key] = value
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: ``override`` over ``base``, mappings merged key by key, anything else replaced."""
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def extend_pod(
    workload: Any, container: str, *, args: Any = (), mounts: Any = (), volumes: Any = ()
) -> dict[str, Any]:
    """A copy of a workload (Deployment, StatefulSet, DaemonSet, Job) with ``args`` appended to
    the container named ``container``, ``mounts`` added to its ``volumeMounts`` and ``volumes`` to
    its pod: ``obj | extend_pod("redis", args=["--port", "0"], mounts=[...], volumes=[...])``.

    ``merge`` would replace these lists whole; here they grow, leaving the other containers and what
    the workload already mounts as they are. A container that is not there, or a mount or volume
    name already taken, is an error naming it."""
    out = _plain(workload)
    if not isinstance(out, dict):
        raise ValueError(f"extend_pod takes a workload object, not {type(out).__name__}")
    what = f"{out.get('kind', 'the workload')} {(out.get('metadata') or {}).get('name', '')}".rstrip()
    pod = ((out.get("spec") or {}).get("template") or {}).get("spec")
    if not isinstance(pod, dict):
        raise ValueError(f"{what} has no pod template (spec.template.spec) to extend")
    containers = pod.get("containers") or []
    target = next((c for c in containers if c.get("name") == container), None)
    if target is None:
        names = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise ValueError(f"{what} has no container {container!r} — its containers are {names}")
    if args:
        target["args"] = [*(target.get("args") or []), *_plain(args)]
    if mounts:
        target["volumeMounts"] = _add_named(target.get("volumeMounts") or [], _plain(mounts), what, "mount")
    if volumes:
        pod["volumes"] = _add_named(pod.get("volumes") or [], _plain(volumes), what, "volume")
    return out


def _add_named(present: list[Any], added: list[Any], what: str, noun: str) -> list[Any]:
    taken = {item.get("name") for item in present}
    for item in added:
        if item.get("name") in taken:
            raise ValueError(f"{what} already has a {noun} named {item.get('name')!r} — pick another name")
        taken.add(item.get("name"))
    return [*present, *added]
