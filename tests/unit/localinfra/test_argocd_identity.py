"""The identities Argo CD's components run as fit in a certificate whatever the cluster's name."""

from __future__ import annotations

from localinfra import argocd


def test_a_short_cluster_name_is_kept_whole() -> None:
    assert argocd.identity("worker-1", "repo-server").name == "argocd-worker-1-repo-server"


def test_a_long_cluster_name_is_cut_to_a_common_name_and_stays_unique() -> None:
    # The longest cluster names the provisioner makes: 63 characters, differing only at the end.
    first, second = "a" * 57 + "-1f2e3", "a" * 57 + "-9d8c7"
    names = {argocd.identity(c, "application-controller") for c in (first, second)}
    assert len(names) == 2
    for who in names:
        assert len(who.name) <= 64
        assert who.name.startswith("argocd-aaaa") and who.name.endswith("-application-controller")
        who.subject()  # a common name over 64 characters is refused here
