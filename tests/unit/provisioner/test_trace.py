"""``fleetplane trace``'s tree: which step is not Ready, and why, at a glance.

Cases: an unbound claim shows a missing composite; a bound claim shows its composite with the
revision, each composed resource with Ready/NotReady and its message, the cluster with its agent's
works and the hub Applications targeting it; a failing Synced condition's message is shown.
"""

from __future__ import annotations

from typing import Any

from provisioner import trace


def _obj(kind: str, name: str, synced: str, ready: str, message: str = "", **extra: Any) -> dict[str, Any]:
    conditions = [
        {"type": "Synced", "status": synced, "message": message if synced == "False" else ""},
        {"type": "Ready", "status": ready, "message": message if ready == "False" else ""},
    ]
    return {"kind": kind, "metadata": {"name": name, **extra}, "status": {"conditions": conditions}}


def test_an_unbound_claim_shows_the_missing_composite() -> None:
    claim = _obj("ClusterClaim", "a", "True", "False", namespace="team")
    text = trace.lines(trace.build(claim, None))
    assert text[0].startswith("ClusterClaim team/a  [Synced=True Ready=False]")
    assert text[1] == "└─ composite  [missing]  the claim is not bound yet"


def test_a_bound_claim_shows_resources_cluster_agent_and_apps() -> None:
    claim = _obj("ClusterClaim", "a", "True", "False", namespace="team")
    composite = _obj("WorkerCluster", "a-1b2c3", "True", "False", "waiting for maestro-agent")
    composite["status"].update(
        compositionRevision="worker-cluster-abc1234",
        resources=[
            {
                "name": "cluster",
                "target": "provider",
                "kind": "ClusterConfig",
                "ready": True,
                "message": "started",
            },
            {
                "name": "maestro-agent",
                "target": "workload",
                "kind": "Deployment",
                "objectName": "maestro-agent",
                "namespace": "open-cluster-management-agent",
                "ready": False,
                "message": "the Maestro agent exited at start",
            },
        ],
        cluster={"name": "a-1b2c3", "provider": "local", "phase": "Ready", "endpoint": "https://127.0.0.1:1"},
    )
    works = [{"name": "guestbook", "applied": True, "message": "applied"}]
    apps = [
        {
            "metadata": {"name": "a-1b2c3-guestbook", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
        }
    ]
    text = "\n".join(trace.lines(trace.build(claim, composite, works, apps)))
    assert "└─ WorkerCluster a-1b2c3  [Synced=True Ready=False  revision worker-cluster-abc1234]" in text
    assert "waiting for maestro-agent" in text
    assert "├─ cluster: provider ClusterConfig  [Ready]  started" in text
    assert (
        "maestro-agent: workload Deployment open-cluster-management-agent/maestro-agent  [NotReady]  "
        "the Maestro agent exited at start"
    ) in text
    assert "cluster a-1b2c3 (local)  [Ready]  https://127.0.0.1:1" in text
    assert "Maestro agent  [1 work(s)]" in text
    assert "work guestbook  [Applied]  applied" in text
    assert "Application argocd/a-1b2c3-guestbook  [Synced/Healthy]" in text


def test_a_failing_sync_shows_its_message() -> None:
    composite = _obj(
        "WorkerCluster", "x", "False", "Unknown", "template.yaml.j2:5: 'parameters' has no attribute"
    )
    text = trace.lines(trace.build(None, composite))
    assert text[0] == (
        "WorkerCluster x  [Synced=False Ready=Unknown]  template.yaml.j2:5: 'parameters' has no attribute"
    )
