"""Every pinned version of the real components, in one place.

Changing a version here changes the cache key of what is built from it, so the next run rebuilds.
"""

from __future__ import annotations

# Apache Kafka broker jars, resolved from Maven Central.
KAFKA = "4.4.0"
#: the log4j of that Kafka release: its SLF4J 1 binding is not among kafka_2.13's dependencies
KAFKA_LOG4J = "2.25.5"

# etcd, built from its Go module.
ETCD = "v3.7.3"

# Argo CD pins the Kubernetes libraries it builds with; we build kube-apiserver, the controller
# manager and kubectl at that same version in one scratch module so both share the compile cache.
ARGOCD = "v3.6.1"
KUBERNETES = "v1.37.0"
KUBERNETES_STAGING = "v0.37.0"

# Argo CD v3.6 declares `go 1.27`; the Go command fetches that toolchain from the module proxy.
GO_TOOLCHAIN = "go1.27.4"

# Debian packages started as plain local processes.
DEBIAN_PACKAGES = ("postgresql", "redis-server", "git")

# The Pulumi CLI, built from github.com/pulumi/pulumi/pkg/v3 at the version of the Python SDK that
# pyproject.toml pins (a test checks they agree).
PULUMI = "3.259.0"

# Helm, built from its Go module; installs fleetplane's charts (charts/).
HELM = "v4.3.2"

# The OCI registry that images are pushed to in tests (CNCF distribution), built from its Go module.
REGISTRY = "v3.1.2"

# Upstream Maestro, whose own Go clients the interop tests drive against fleetplane: the commit
# the driver is built at; the open-cluster-management.io modules are taken at the versions its
# go.mod names.
UPSTREAM_MAESTRO = "ab480c6578bcbcbceeeb2c964c7bef6aed119c18"
