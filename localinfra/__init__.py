"""The local runtime: real PostgreSQL, Kafka, etcd, kube-apiservers and Argo CD on this machine.

This is the lowest layer of fleetplane. The demo, the tests, the provisioner's ``local`` provider and
the bootstrap's ``local`` stack all stand on it, so there is one way to build, start, find and stop
every component. It imports nothing from the platform above it (an import-linter contract checks).
"""
