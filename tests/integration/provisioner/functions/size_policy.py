"""A composition function written with Crossplane's Python SDK, served over RunFunction gRPC.

``size-policy`` reads its input ``maxNodeCount`` and the provider resource's ``spec.nodeCount``:
above the limit it returns a fatal result, at the limit a warning, below it a normal one. It adds a
``policy-report`` ConfigMap for the new cluster, sets the ``SizeChecked`` condition and leaves
``size-policy/checked`` in the context. Run by the integration tests' fixture with the SDK's own
interpreter (the SDK pins gRPC and protobuf versions of its own):

    python size_policy.py --address 127.0.0.1:PORT [--tls-certs-dir DIR]
"""

from __future__ import annotations

import argparse

import grpc
from crossplane.function import resource, response, runtime
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

TARGET = "fleetplane.io/target"


class SizePolicy(grpcv1.FunctionRunnerServiceServicer):
    async def RunFunction(
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext
    ) -> fnv1.RunFunctionResponse:
        rsp = response.to(req)
        limit = int(req.input["maxNodeCount"])
        desired = {name: resource.struct_to_dict(r.resource) for name, r in req.desired.resources.items()}
        provider = next(
            (
                o
                for o in desired.values()
                if (o.get("metadata") or {}).get("annotations", {}).get(TARGET) == "provider"
            ),
            None,
        )
        if provider is None:
            response.fatal(rsp, "no provider resource composed before this step")
            return rsp
        count = int(provider["spec"].get("nodeCount", 1))
        if count > limit:
            response.fatal(rsp, f"nodeCount {count} is above the limit of {limit}")
            return rsp
        if count == limit:
            response.warning(rsp, f"nodeCount {count} is at the limit of {limit}")
        else:
            response.normal(rsp, f"nodeCount {count} is within the limit of {limit}")
        name = req.observed.composite.resource["metadata"]["name"]
        resource.update(
            rsp.desired.resources["policy-report"],
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "policy-report",
                    "namespace": "default",
                    "annotations": {TARGET: "workload"},
                },
                "data": {"composite": name, "nodeCount": str(count), "limit": str(limit)},
            },
        )
        rsp.conditions.append(
            fnv1.Condition(
                type="SizeChecked",
                status=fnv1.STATUS_CONDITION_TRUE,
                reason="WithinLimit",
                message=f"{count}/{limit}",
            )
        )
        rsp.context.update({"size-policy/checked": True})
        return rsp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--tls-certs-dir", default="")
    args = parser.parse_args()
    creds = runtime.load_credentials(args.tls_certs_dir) if args.tls_certs_dir else None
    runtime.serve(SizePolicy(), args.address, creds=creds, insecure=creds is None)


if __name__ == "__main__":
    main()
