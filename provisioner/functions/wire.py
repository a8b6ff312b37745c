"""Function servers: composition functions called over Crossplane's RunFunction gRPC protocol.

A function written for Crossplane (``crossplane-function-sdk-python``, or any language's SDK) runs
as a server; the provisioner calls its ``RunFunction`` as Crossplane does, so the same server
serves both. This module is the only one of the provisioner that knows gRPC and the protocol's
messages: the messages are declared here from the protocol's field numbers (the subset the
provisioner sends and reads; unknown fields are skipped on the wire), so the provisioner does not
depend on the SDK and its pinned gRPC and protobuf versions.

Mapping onto composed resources: each desired resource's object carries its ``target`` and
``waitReady`` as the annotations ``fleetplane.io/target`` and ``fleetplane.io/wait-ready`` (removed
again from what the function returns); the observed resources are the composite's
``status.resources`` entries. The order of the desired resources is kept, and those a function adds
follow in the order it lists them. Numbers come back from protobuf's Struct as floats: whole ones
are made integers again (``nodeCount: 3``, not ``3.0``). An object nested deeper than
:data:`MAX_DEPTH` levels (Argo CD's CRDs and their schemas) is sent as its outline — apiVersion,
kind and metadata, annotated ``fleetplane.io/withheld: "true"`` — since protobuf decoders refuse
messages nested that deep; a function may drop or keep it, and a kept one is applied as it was.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, struct_pb2

from provisioner import functions
from provisioner.composed import TARGETS, ComposedResource

#: the RunFunction method of Crossplane's apiextensions.fn.proto.v1 FunctionRunnerService
METHOD = "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction"
ANNOTATION_TARGET = "fleetplane.io/target"
ANNOTATION_WAIT_READY = "fleetplane.io/wait-ready"
ANNOTATION_WITHHELD = "fleetplane.io/withheld"
#: objects nested deeper than this (Argo CD's CRDs) are sent as their outline: each level of JSON is
#: three of protobuf's Struct, and decoders stop at 100 (upb's default, the Python SDK's)
MAX_DEPTH = 24
_PACKAGE = "fleetplane.provisioner.fn.v1"
_SEVERITIES = {"SEVERITY_FATAL": "Fatal", "SEVERITY_WARNING": "Warning", "SEVERITY_NORMAL": "Normal"}
_STATUSES = {"STATUS_CONDITION_TRUE": "True", "STATUS_CONDITION_FALSE": "False"}
_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    """The protocol's messages (field numbers as Crossplane's run_function.proto v1 has them)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="fleetplane/provisioner/run_function.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/struct.proto"],
    )

    def enum(name: str, values: list[str]) -> None:
        e = file.enum_type.add(name=name)
        for number, value in enumerate(values):
            e.value.add(name=value, number=number)

    enum(
        "Capability",
        [
            "CAPABILITY_UNSPECIFIED",
            "CAPABILITY_CAPABILITIES",
            "CAPABILITY_REQUIRED_RESOURCES",
            "CAPABILITY_CREDENTIALS",
            "CAPABILITY_CONDITIONS",
        ],
    )
    enum("Ready", ["READY_UNSPECIFIED", "READY_TRUE", "READY_FALSE"])
    enum("Severity", ["SEVERITY_UNSPECIFIED", "SEVERITY_FATAL", "SEVERITY_WARNING", "SEVERITY_NORMAL"])
    enum(
        "Status",
        [
            "STATUS_CONDITION_UNSPECIFIED",
            "STATUS_CONDITION_UNKNOWN",
            "STATUS_CONDITION_TRUE",
            "STATUS_CONDITION_FALSE",
        ],
    )

    def message(name: str, *fields: tuple[str, int, int, str, bool]) -> descriptor_pb2.DescriptorProto:
        m = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            f = m.field.add(name=field_name, number=number, type=kind)  # type: ignore[arg-type]
            f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                f.type_name = type_name if type_name.startswith(".google") else f".{_PACKAGE}.{type_name}"
        return m

    struct = ".google.protobuf.Struct"
    msg, enum_t, string = _F.TYPE_MESSAGE, _F.TYPE_ENUM, _F.TYPE_STRING
    message("RequestMeta", ("tag", 1, string, "", False), ("capabilities", 2, enum_t, "Capability", True))
    message("ResponseMeta", ("tag", 1, string, "", False))
    message("Resource", ("resource", 1, msg, struct, False), ("ready", 3, enum_t, "Ready", False))
    state = message(
        "State", ("composite", 1, msg, "Resource", False), ("resources", 2, msg, "State.ResourcesEntry", True)
    )
    entry = state.nested_type.add(name="ResourcesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=string, label=_F.LABEL_OPTIONAL)
    entry.field.add(
        name="value", number=2, type=msg, label=_F.LABEL_OPTIONAL, type_name=f".{_PACKAGE}.Resource"
    )
    message(
        "Result",
        ("severity", 1, enum_t, "Severity", False),
        ("message", 2, string, "", False),
        ("reason", 3, string, "", False),
    )
    message(
        "Condition",
        ("type", 1, string, "", False),
        ("status", 2, enum_t, "Status", False),
        ("reason", 3, string, "", False),
        ("message", 4, string, "", False),
    )
    message(
        "RunFunctionRequest",
        ("meta", 1, msg, "RequestMeta", False),
        ("observed", 2, msg, "State", False),
        ("desired", 3, msg, "State", False),
        ("input", 4, msg, struct, False),
        ("context", 5, msg, struct, False),
    )
    message(
        "RunFunctionResponse",
        ("meta", 1, msg, "ResponseMeta", False),
        ("desired", 2, msg, "State", False),
        ("results", 3, msg, "Result", True),
        ("context", 4, msg, struct, False),
        ("conditions", 6, msg, "Condition", True),
    )
    return file


def _classes() -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    well_known = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(well_known)
    pool.Add(well_known)
    pool.Add(_file())
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.RunFunctionRequest"))
    response = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.RunFunctionResponse"))
    return request, response


RunFunctionRequest, RunFunctionResponse = _classes()


@dataclasses.dataclass(frozen=True)
class Tls:
    """mTLS to a function server, as Crossplane runs it: ``ca.crt`` verifies the server, ``tls.crt``
    and ``tls.key`` are the provisioner's client certificate."""

    folder: Path

    def credentials(self) -> grpc.ChannelCredentials:
        def read(name: str) -> bytes:
            path = self.folder / name
            try:
                return path.read_bytes()
            except OSError as exc:
                raise functions.FunctionError(
                    f"cannot read {path} ({exc.strerror or exc}) — the function TLS folder holds ca.crt, "
                    "tls.crt and tls.key"
                ) from None

        return grpc.ssl_channel_credentials(read("ca.crt"), read("tls.key"), read("tls.crt"))


class FunctionServer:
    """A function server at ``address``: called like a Python function (``await server(request)``)."""

    def __init__(self, name: str, address: str, *, tls: Tls | None = None, timeout: float = 20.0) -> None:
        self.name = name
        self.address = address
        self.tls = tls
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _call(self) -> Any:
        if self._channel is None:
            self._channel = (
                grpc.aio.secure_channel(self.address, self.tls.credentials())
                if self.tls
                else grpc.aio.insecure_channel(self.address)
            )
        return self._channel.unary_unary(
            METHOD,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=RunFunctionResponse.FromString,
        )

    async def __call__(self, request: functions.Request) -> functions.Response:
        try:
            reply = await self._call()(to_message(request), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise functions.FunctionError(
                f"the function server at {self.address} answered {exc.code().name}: {exc.details()} — "
                "check that it runs there (--function NAME=ADDRESS) and speaks RunFunction v1"
            ) from None
        return from_message(reply, request)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def parse_servers(specs: list[str], tls: Tls | None = None) -> dict[str, FunctionServer]:
    """``NAME=HOST:PORT`` options as function servers; a malformed one is an error naming the fix."""
    servers: dict[str, FunctionServer] = {}
    for spec in specs:
        name, sep, address = spec.partition("=")
        if not sep or not name or ":" not in address:
            raise functions.FunctionError(
                f"--function {spec!r} is not NAME=HOST:PORT — e.g. --function size-policy=127.0.0.1:9443"
            )
        if name in servers:
            raise functions.FunctionError(f"--function names {name!r} twice — give each server its own name")
        servers[name] = FunctionServer(name, address, tls=tls)
    return servers


def to_message(request: functions.Request) -> Any:
    observed = {
        name: {"resource": dict(entry), "ready": "READY_TRUE" if entry.get("ready") else "READY_FALSE"}
        for name, entry in request.observed.items()
    }
    data: dict[str, Any] = {
        "meta": {"tag": "", "capabilities": ["CAPABILITY_CAPABILITIES", "CAPABILITY_CONDITIONS"]},
        "observed": {"composite": {"resource": request.composite}, "resources": observed},
        "desired": {
            "composite": {"resource": _composite_ref(request.composite)},
            "resources": {r.name: {"resource": _annotated(r)} for r in request.desired},
        },
        "input": request.input,
        "context": request.context,
    }
    message = RunFunctionRequest()
    json_format.ParseDict(data, message)
    return message


def from_message(reply: Any, request: functions.Request) -> functions.Response:
    data = json_format.MessageToDict(reply, preserving_proto_field_name=True)
    results = [
        functions.Result(
            # a result of no known severity is taken as fatal, as Crossplane does
            _SEVERITIES.get(str(r.get("severity")), "Fatal"),  # type: ignore[arg-type]
            str(r.get("message") or ""),
            str(r.get("reason") or ""),
        )
        for r in data.get("results") or []
    ]
    conditions = [
        functions.Condition(
            str(c.get("type") or ""),
            _STATUSES.get(str(c.get("status")), "Unknown"),  # type: ignore[arg-type]
            str(c.get("reason") or ""),
            str(c.get("message") or ""),
        )
        for c in data.get("conditions") or []
    ]
    # As in Crossplane, the response's desired state replaces the request's: a function passes on
    # what it does not change.
    desired = _resources((data.get("desired") or {}).get("resources") or {}, request.desired)
    context = _whole_numbers(data["context"]) if "context" in data else None
    return functions.Response(desired=desired, results=results, context=context, conditions=conditions)


def _composite_ref(composite: Mapping[str, Any]) -> dict[str, Any]:
    meta = composite.get("metadata") or {}
    return {
        "apiVersion": composite.get("apiVersion"),
        "kind": composite.get("kind"),
        "metadata": {k: meta[k] for k in ("name", "namespace") if meta.get(k)},
    }


def _annotated(resource: ComposedResource) -> dict[str, Any]:
    obj = copy.deepcopy(resource.object)
    deep = _depth(obj) > MAX_DEPTH
    if deep:
        obj = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    meta = obj.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {})
    annotations[ANNOTATION_TARGET] = resource.target
    if resource.wait_ready:
        annotations[ANNOTATION_WAIT_READY] = "true"
    if deep:
        annotations[ANNOTATION_WITHHELD] = "true"
    return obj


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _resources(returned: Mapping[str, Any], before: list[ComposedResource]) -> list[ComposedResource]:
    sent = {r.name: r for r in before}
    order = [r.name for r in before if r.name in returned] + [n for n in returned if n not in sent]
    out = []
    for name in order:
        obj = _whole_numbers((returned[name] or {}).get("resource") or {})
        meta = obj.get("metadata")
        annotations = dict((meta or {}).get("annotations") or {})
        if annotations.get(ANNOTATION_WITHHELD) == "true" and name in sent:
            out.append(sent[name])  # passed on as it was: the function saw its outline only
            continue
        target = annotations.pop(ANNOTATION_TARGET, None)
        if target not in TARGETS:
            raise functions.FunctionError(
                f"desired resource {name!r} has annotation {ANNOTATION_TARGET} = {target!r} — set it to one "
                f"of {', '.join(TARGETS)} (where the provisioner applies the object)"
            )
        wait_ready = str(annotations.pop(ANNOTATION_WAIT_READY, "")).lower() == "true"
        if isinstance(meta, dict):
            if annotations:
                meta["annotations"] = annotations
            else:
                meta.pop("annotations", None)
            if not meta:
                obj.pop("metadata")
        out.append(ComposedResource(name=name, target=target, object=obj, wait_ready=wait_ready))
    return out


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value
