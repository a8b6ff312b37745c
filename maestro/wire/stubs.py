"""The generated protobuf and gRPC modules under stable names.

The gRPC server, the agent's and controllers' clients and the conversion modules here import the
stubs through this module (`from maestro.wire import stubs`, then `stubs.cloudevent_grpc.
CloudEventServiceServicer`), so no code outside `maestro.wire` names a `*_pb2` module.
"""

from __future__ import annotations

from maestro.wire.gen.fleetplane.cloudevents.v1 import cloudevent_pb2 as cloudevent
from maestro.wire.gen.fleetplane.cloudevents.v1 import cloudevent_pb2_grpc as cloudevent_grpc
from maestro.wire.gen.fleetplane.maestro.v1 import quarantine_pb2 as quarantine
from maestro.wire.gen.fleetplane.maestro.v1 import quarantine_pb2_grpc as quarantine_grpc
from maestro.wire.gen.fleetplane.maestro.v1 import query_pb2 as query
from maestro.wire.gen.fleetplane.maestro.v1 import query_pb2_grpc as query_grpc
from maestro.wire.gen.fleetplane.maestro.v1 import source_pb2 as source
from maestro.wire.gen.fleetplane.maestro.v1 import source_pb2_grpc as source_grpc

CLOUDEVENT_SERVICE = "io.cloudevents.v1.CloudEventService"
QUERY_SERVICE = "fleetplane.maestro.v1.MaestroQuery"
SOURCE_SERVICE = "fleetplane.maestro.v1.MaestroSource"
QUARANTINE_SERVICE = "fleetplane.maestro.v1.MaestroQuarantine"

__all__ = [
    "CLOUDEVENT_SERVICE",
    "QUARANTINE_SERVICE",
    "QUERY_SERVICE",
    "SOURCE_SERVICE",
    "cloudevent",
    "cloudevent_grpc",
    "quarantine",
    "quarantine_grpc",
    "query",
    "query_grpc",
    "source",
    "source_grpc",
]
