"""The verdict on the vendor's EKS cluster (REQUIREMENTS V1)."""

from __future__ import annotations

import pytest

from mlplane.eks.models import ClusterView, HealthIssue, NodegroupView
from mlplane.eks.watch import assess

ACCOUNT = "111111111111"


def _cluster(status: str, *groups: tuple[str, str], name: str = "aac-111111111111") -> ClusterView:
    return ClusterView(name=name, status=status, nodegroups=tuple(NodegroupView(name=n, status=s) for n, s in groups))


@pytest.mark.parametrize(
    ("clusters", "state"),
    [
        ((), "absent"),
        ((_cluster("CREATING"),), "waiting"),
        ((_cluster("ACTIVE"),), "waiting"),  # no node group yet
        ((_cluster("ACTIVE", ("ng-a", "CREATING"), ("ng-b", "ACTIVE")),), "waiting"),
        ((_cluster("ACTIVE", ("ng-a", "ACTIVE"), ("ng-b", "ACTIVE")),), "ready"),
        ((_cluster("UPDATING", ("ng-a", "ACTIVE")),), "waiting"),
        ((_cluster("ACTIVE", ("ng-a", "ACTIVE")), _cluster("CREATING", name="aac-2")), "waiting"),
        ((_cluster("FAILED"),), "failed"),
        ((_cluster("ACTIVE", ("ng-a", "CREATE_FAILED")),), "failed"),
        ((_cluster("ACTIVE", ("ng-a", "ACTIVE"), ("ng-b", "DEGRADED")),), "failed"),
    ],
)
def test_v1_assess_ready_only_when_cluster_and_every_node_group_active(
    clusters: tuple[ClusterView, ...], state: str
) -> None:
    assert assess(clusters, prefix="aac-", account_id=ACCOUNT).state == state


def test_v1_failed_node_group_is_named_with_its_health_issues() -> None:
    cluster = ClusterView(
        name="aac-111111111111",
        status="ACTIVE",
        nodegroups=(
            NodegroupView(
                name="aac-ng-jobs",
                status="CREATE_FAILED",
                issues=(HealthIssue(code="AsgInstanceLaunchFailures", message="Could not launch"),),
            ),
        ),
    )
    verdict = assess((cluster,), prefix="aac-", account_id=ACCOUNT)
    assert verdict.detail == (
        "vendor EKS node group aac-ng-jobs of cluster aac-111111111111 in 111111111111 is CREATE_FAILED"
        " (AsgInstanceLaunchFailures: Could not launch)"
    )


def test_v1_failed_cluster_is_named() -> None:
    verdict = assess(
        (ClusterView(name="aac-x", status="FAILED", issues=(HealthIssue(code="VpcNotFound"),)),),
        prefix="aac-",
        account_id=ACCOUNT,
    )
    assert verdict.detail == "vendor EKS cluster aac-x in 111111111111 is FAILED (VpcNotFound)"
