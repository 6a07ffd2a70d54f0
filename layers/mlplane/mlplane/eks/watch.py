"""WaitForEks and WaitForCredentialRole: watch what the vendor (AAC) creates, read-only (REQUIREMENTS V1-V2).

The vendor's cluster is the one whose name starts with `settings.eks_cluster_prefix`. mlplane only lists
and describes it: changing or deleting vendor resources breaks the data plane and its deprovisioning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlplane import notify, observability, polling
from mlplane.config import Settings
from mlplane.eks.models import (
    FAILED_CLUSTER_STATUSES,
    FAILED_NODEGROUP_STATUSES,
    ClusterView,
    EksReadiness,
    HealthIssue,
    NodegroupView,
)
from mlplane.errors import TimedOut, VendorFailed, error_code, translate
from mlplane.steps import PollOutput

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_iam import IAMClient

    from mlplane.member import Member

_MESSAGE_LIMIT = 200


# -- pure verdict -----------------------------------------------------------------------------------------
def assess(clusters: Sequence[ClusterView], *, prefix: str, account_id: str) -> EksReadiness:
    """Ready when every vendor cluster is ACTIVE with at least one node group, all ACTIVE.

    A FAILED cluster or a CREATE_FAILED/DEGRADED node group fails at once, naming it and its issues.
    """
    if not clusters:
        return EksReadiness(state="absent", detail=f"no EKS cluster with prefix {prefix!r} yet")
    for cluster in clusters:
        if cluster.status in FAILED_CLUSTER_STATUSES:
            return EksReadiness(
                state="failed",
                detail=(
                    f"vendor EKS cluster {cluster.name} in {account_id} is {cluster.status}{_issues(cluster.issues)}"
                ),
            )
        for group in cluster.nodegroups:
            if group.status in FAILED_NODEGROUP_STATUSES:
                return EksReadiness(
                    state="failed",
                    detail=(
                        f"vendor EKS node group {group.name} of cluster {cluster.name} in {account_id}"
                        f" is {group.status}{_issues(group.issues)}"
                    ),
                )
    ready = all(
        cluster.status == "ACTIVE" and cluster.nodegroups and all(g.status == "ACTIVE" for g in cluster.nodegroups)
        for cluster in clusters
    )
    return EksReadiness(state="ready" if ready else "waiting", detail="; ".join(_summary(c) for c in clusters))


def _issues(issues: Sequence[HealthIssue]) -> str:
    if not issues:
        return ""
    return " (" + "; ".join(issue.text()[:_MESSAGE_LIMIT] for issue in issues) + ")"


def _summary(cluster: ClusterView) -> str:
    groups = ", ".join(f"{g.name} {g.status}" for g in cluster.nodegroups) or "none"
    return f"cluster {cluster.name} {cluster.status}, node groups: {groups}"


# -- observe (read-only) ----------------------------------------------------------------------------------
def observe(member: Member, prefix: str) -> list[ClusterView]:
    """The vendor's clusters (name starts with `prefix`) and their node groups, sorted by name."""
    eks: EKSClient = member.client("eks")
    views: list[ClusterView] = []
    for name in _cluster_names(eks, prefix, member.account_id):
        view = _describe_cluster(eks, name, member.account_id)
        if view is not None:
            views.append(view)
    return views


def _cluster_names(eks: EKSClient, prefix: str, account_id: str) -> list[str]:
    names: list[str] = []
    try:
        for page in eks.get_paginator("list_clusters").paginate():
            names.extend(name for name in page.get("clusters", []) if name.startswith(prefix))
    except ClientError as err:
        raise translate(err, f"eks:ListClusters in {account_id}") from err
    return sorted(names)


def _describe_cluster(eks: EKSClient, name: str, account_id: str) -> ClusterView | None:
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
        group_names: list[str] = []
        for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name):
            group_names.extend(page.get("nodegroups", []))
        groups = [_describe_nodegroup(eks, name, group) for group in sorted(group_names)]
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None  # deleted between the list and the describe
        raise translate(err, f"eks:DescribeCluster {name} in {account_id}") from err
    return ClusterView(
        name=name,
        status=str(cluster.get("status", "")),
        issues=_issues_from(cluster.get("health", {})),
        nodegroups=tuple(group for group in groups if group is not None),
    )


def _describe_nodegroup(eks: EKSClient, cluster: str, name: str) -> NodegroupView | None:
    try:
        group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise
    return NodegroupView(name=name, status=str(group.get("status", "")), issues=_issues_from(group.get("health", {})))


def _issues_from(health: Any) -> tuple[HealthIssue, ...]:
    return tuple(
        HealthIssue(code=str(issue.get("code", "Unknown")), message=str(issue.get("message", "")).split("\n")[0])
        for issue in (health or {}).get("issues", []) or []
    )


# -- the wait loops ---------------------------------------------------------------------------------------
def poll_cluster(member: Member, settings: Settings, attempt: int, waited: int = 0, last_wait: int = 0) -> PollOutput:
    """One poll of WaitForEks; raises VendorFailed on a failed cluster or node group, TimedOut at the end.

    The wait includes the AAC admin's trigger, a person's act: it backs off like the quota wait, the timeout
    counts the seconds waited (`waited`), and each day of waiting is notified again."""
    verdict = assess(
        observe(member, settings.eks_cluster_prefix), prefix=settings.eks_cluster_prefix, account_id=member.account_id
    )
    if verdict.state == "failed":
        raise VendorFailed(verdict.detail)
    ready = verdict.state == "ready"
    ended = ready or polling.timed_out(waited, settings.vendor_timeout_seconds)
    if ended:
        observability.wait_ended("eks", waited)
    if not ready and ended:
        raise TimedOut(
            f"vendor EKS cluster with prefix {settings.eks_cluster_prefix!r} not ACTIVE in {member.account_id}"
            f" after {settings.vendor_timeout_seconds} s"
        )
    if not ready:
        notify.remind_if_due(
            settings,
            account_id=member.account_id,
            execution=member.execution,
            waited=waited,
            last_wait=last_wait,
            waiting_for=lambda: (
                f"the AAC data plane (cluster prefix {settings.eks_cluster_prefix!r}): {verdict.detail}"
            ),
        )
    delay, total = polling.next_wait(settings.poll_interval_seconds, attempt, waited, settings.vendor_timeout_seconds)
    return PollOutput(ready=ready, attempt=attempt + 1, detail=verdict.detail, wait_seconds=delay, waited_seconds=total)


def poll_credential_role(member: Member, settings: Settings, attempt: int, waited: int = 0) -> PollOutput:
    """One poll of WaitForCredentialRole: ready once the vendor's role exists; TimedOut at the end (backed
    off, as the cluster wait)."""
    name = settings.credential_role_name
    ready = role_exists(member, name)
    ended = ready or polling.timed_out(waited, settings.vendor_timeout_seconds)
    if ended:
        observability.wait_ended("credential_role", waited)
    if not ready and ended:
        raise TimedOut(f"vendor role {name} not found in {member.account_id} after {settings.vendor_timeout_seconds} s")
    delay, total = polling.next_wait(settings.poll_interval_seconds, attempt, waited, settings.vendor_timeout_seconds)
    detail = f"role {name} {'found' if ready else 'not found yet'}"
    return PollOutput(ready=ready, attempt=attempt + 1, detail=detail, wait_seconds=delay, waited_seconds=total)


def role_exists(member: Member, name: str) -> bool:
    iam: IAMClient = member.client("iam")
    try:
        iam.get_role(RoleName=name)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise translate(err, f"iam:GetRole {name} in {member.account_id}") from err
    return True


def vendor_cluster(member: Member, settings: Settings) -> str | None:
    """The name of a vendor cluster that exists in the account (deprovision refuses while there is one)."""
    names = _cluster_names(member.client("eks"), settings.eks_cluster_prefix, member.account_id)
    return names[0] if names else None
