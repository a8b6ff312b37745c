"""The shipped examples are accepted as they are by a real kube-apiserver: the claims by the
ClusterClaim CRD the provisioner generates from the shipped definition, the ApplicationSets by
Argo CD's CRD (server-side dry run with strict field validation: an unknown or misspelt field is
an error, and nothing is stored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localinfra import kube, kubectl
from localinfra.errors import InfraError
from provisioner import api, catalog, xrd
from tests import examples


@pytest.fixture(scope="module")
def hub_with_claims(hub: kube.Cluster) -> kube.Cluster:
    (definition,) = catalog.load_documents(catalog.COMPOSITIONS_DIR / "worker-cluster" / "definition.yaml")
    crds = api.platform_crds() + xrd.generated_crds(definition)
    kubectl.apply(hub.kubeconfig, crds, field_manager="examples-test")
    kubectl.wait_established(hub.kubeconfig, *(crd["metadata"]["name"] for crd in crds))
    # A dry run creates no namespace, so the examples' namespaces are made for real first.
    namespaces = {"argocd"} | {
        ns["metadata"]["name"] for path in examples.CLAIMS for ns in examples.of_kind(path, "Namespace")
    }
    made = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in sorted(namespaces)]
    kubectl.apply(hub.kubeconfig, made, field_manager="examples-test")
    return hub


@pytest.mark.parametrize(
    "path", examples.CLAIMS + examples.APPLICATION_SETS, ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_the_example_is_accepted_as_it_is(hub_with_claims: kube.Cluster, path: Path) -> None:
    out = kubectl.dry_run(hub_with_claims.kubeconfig, path, field_manager="examples-test")
    for doc in examples.documents(path):
        assert f"{doc['metadata']['name']} serverside-applied (server dry run)" in out


def test_a_misspelt_field_is_refused(hub_with_claims: kube.Cluster, tmp_path: Path) -> None:
    """What makes the test above worth its name: the API server does check the examples' fields."""
    text = (examples.EXAMPLES / "claims" / "local-cluster.yaml").read_text()
    broken = tmp_path / "claim.yaml"
    broken.write_text(text.replace("    labels:\n      env: dev", "    lables:\n      env: dev"))
    with pytest.raises(InfraError, match="lables"):
        kubectl.dry_run(hub_with_claims.kubeconfig, broken)
