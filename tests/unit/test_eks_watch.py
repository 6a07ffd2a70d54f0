"""The verdict on the vendor's EKS cluster (REQUIREMENTS V1)."""

from __future__ import annotations

import pytest

from mlplane.eks.footprint import VendorResource, summary
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


def test_c7_the_held_summary_names_ids_by_type_within_its_limit_and_counts_the_rest() -> None:
    footprint = [
        VendorResource(type="eks:cluster", id="aac-111111111111", detail="ACTIVE"),
        VendorResource(type="eks:nodegroup", id="aac-111111111111/ng-a", detail="ACTIVE"),
        *(
            VendorResource(type="ec2:network-interface", id=f"eni-{n:017x}", detail=f"aws-K8S-i-{n:017x} in subnet-1")
            for n in range(40)
        ),
        VendorResource(type="iam:role", id="credential-service-role", detail="the vault key's policy names it"),
    ]
    line = summary(footprint, limit=300)
    assert line.startswith("eks:cluster aac-111111111111 (ACTIVE); eks:nodegroup aac-111111111111/ng-a (ACTIVE); ")
    assert "ec2:network-interface eni-00000000000000000, eni-00000000000000001" in line
    assert "aws-K8S" not in line  # an interface's description is the notification's to carry
    shown = line.count("eni-")
    assert 0 < shown < 40 and len(line) < 400
    assert line.endswith(f"; and {40 - shown + 1} more (the ROLLBACK_HELD notification lists them)")
    small = summary(footprint[:3])
    assert small.endswith("ec2:network-interface eni-00000000000000000") and "more" not in small
