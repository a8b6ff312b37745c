"""The wire layer: generated protobuf stubs and their conversion to and from `maestro.api` types.

The only package that imports `*_pb2` modules; the server and clients import `maestro.wire`.
"""
