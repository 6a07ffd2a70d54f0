"""The vendor simulator and mlplane's read-only watch of it (REQUIREMENTS V1-V2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest

from mlplane import notify
from mlplane.config import Settings
from mlplane.eks import watch
from mlplane.errors import TimedOut, VendorFailed
from mlplane.member import Member, member_for
from mlplane.steps import PollOutput
from mlplane_sandbox import recording, vendor
from mlplane_sandbox.clock import VirtualClock

from .conftest import MEMBER, OTHER_MEMBER, REGION, TABLE

Starter = Callable[[str], vendor.VendorSimulator]
Poll = Callable[[Member, Settings, int, int], PollOutput]
DURATION = vendor.DEFAULT_DURATION_SECONDS
READ_ONLY = {
    "eks:ListClusters",
    "eks:DescribeCluster",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    "iam:GetRole",
    "sts:AssumeRole",
    "dynamodb:GetItem",
}


@pytest.fixture
def topic(sandbox: VirtualClock) -> str:
    return str(boto3.client("sns", region_name=REGION).create_topic(Name="mlplane")["TopicArn"])


@pytest.fixture
def settings(topic: str) -> Settings:
    # A 2-hour vendor timeout keeps the never-coming vendor's wait short (the default is 7 days).
    return Settings(
        ledger_table=TABLE, aws_region=REGION, topic_arn=topic, poll_interval_seconds=60, vendor_timeout_seconds=7200
    )


@pytest.fixture
def watcher(settings: Settings) -> Member:
    return member_for(MEMBER, "exec-1", "WaitForEks", settings)


@pytest.fixture
def start(sandbox: VirtualClock) -> Iterator[Starter]:
    made: list[vendor.VendorSimulator] = []

    def _start(scenario: str) -> vendor.VendorSimulator:
        simulator = vendor.start(scenario, sandbox)
        made.append(simulator)
        return simulator

    yield _start
    vendor.stop()


def _ready_for_vendor(settings: Settings, account: str = MEMBER) -> None:
    """What mlplane's NotifyReadyForVendor does: publish the documented message."""
    notify.publish(settings, notify.message("READY_FOR_VENDOR", account_id=account, execution="exec-1"))


def _wait(poll: Poll, member: Member, settings: Settings, clock: VirtualClock, waits: list[int] | None = None) -> int:
    """The ASL's wait loop: poll, Wait what the poll said (backing off), poll again; returns the attempts used.
    `waits` collects each Wait's seconds."""
    attempt, waited = 0, 0
    while True:
        with recording.actor("WaitFunction"):
            answer = poll(member, settings, attempt, waited)
        attempt, waited = answer.attempt, answer.waited_seconds
        if answer.ready:
            return attempt
        if waits is not None:
            waits.append(answer.wait_seconds)
        clock.advance(answer.wait_seconds)


def test_v1_ok_vendor_is_detected_within_one_poll_interval_of_readiness(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("ok")
    began = sandbox.now()
    _ready_for_vendor(settings)
    assert simulator.triggered(MEMBER)
    assert not watch.poll_cluster(watcher, settings, 0).ready

    waits: list[int] = []
    _wait(watch.poll_cluster, watcher, settings, sandbox, waits)
    ready_at = simulator.readiness_time(MEMBER)
    assert ready_at is not None
    assert ready_at == pytest.approx(began + DURATION)
    assert 0 <= sandbox.now() - ready_at < waits[-1]  # the first poll after it, the polls backing off
    assert watch.poll_credential_role(watcher, settings, 0).ready
    assert watch.vendor_cluster(watcher, settings) == f"aac-{MEMBER}"


def test_v1_cluster_and_node_groups_move_on_the_clock(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    start("ok")
    _ready_for_vendor(settings)
    eks = watcher.client("eks")
    name = f"aac-{MEMBER}"
    assert eks.describe_cluster(name=name)["cluster"]["status"] == "CREATING"
    assert eks.list_nodegroups(clusterName=name)["nodegroups"] == []
    sandbox.advance(0.6 * DURATION)
    assert eks.describe_cluster(name=name)["cluster"]["status"] == "ACTIVE"
    groups = eks.list_nodegroups(clusterName=name)["nodegroups"]
    assert len(groups) == 2
    assert {eks.describe_nodegroup(clusterName=name, nodegroupName=g)["nodegroup"]["status"] for g in groups} == {
        "CREATING"
    }
    assert not watch.role_exists(watcher, settings.credential_role_name)
    sandbox.advance(0.4 * DURATION)
    assert {eks.describe_nodegroup(clusterName=name, nodegroupName=g)["nodegroup"]["status"] for g in groups} == {
        "ACTIVE"
    }
    assert watch.role_exists(watcher, settings.credential_role_name)


def test_v1_slow_vendor_is_still_within_the_default_timeout(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("slow")
    began = sandbox.now()
    _ready_for_vendor(settings)
    attempts = _wait(watch.poll_cluster, watcher, settings, sandbox)
    assert simulator.readiness_time(MEMBER) == pytest.approx(began + 3 * DURATION)
    assert attempts < settings.max_polls(settings.vendor_timeout_seconds)


def test_v1_failed_cluster_fails_fast_naming_it(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    start("cluster-failed")
    began = sandbox.now()
    _ready_for_vendor(settings)
    waits: list[int] = []
    with pytest.raises(VendorFailed) as err:
        _wait(watch.poll_cluster, watcher, settings, sandbox, waits)
    assert str(err.value).startswith(
        f"vendor EKS cluster aac-{MEMBER} in {MEMBER} is FAILED (InsufficientFreeAddresses"
    )
    failed_at = began + vendor.CLUSTER_ACTIVE_AT * DURATION
    assert 0 <= sandbox.now() - failed_at < waits[-1]  # the first poll after it failed


def test_v1_failed_node_group_fails_naming_it_and_its_health_issue(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("nodegroup-failed")
    _ready_for_vendor(settings)
    with pytest.raises(VendorFailed) as err:
        _wait(watch.poll_cluster, watcher, settings, sandbox)
    assert f"vendor EKS node group aac-ng-jobs of cluster aac-{MEMBER}" in str(err.value)
    assert "CREATE_FAILED (AsgInstanceLaunchFailures: Could not launch On-Demand Instances" in str(err.value)
    assert simulator.readiness_time(MEMBER) is None
    assert not watch.role_exists(watcher, settings.credential_role_name)


def test_v1_vendor_that_never_comes_times_out_after_the_configured_budget(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    start("never")
    _ready_for_vendor(settings)
    began = sandbox.now()
    with pytest.raises(TimedOut) as err:
        _wait(watch.poll_cluster, watcher, settings, sandbox)
    assert str(err.value) == f"vendor EKS cluster with prefix 'aac-' not ACTIVE in {MEMBER} after 7200 s"
    assert sandbox.now() - began == settings.vendor_timeout_seconds  # gave up at the timeout, not before


def test_v1_missing_credential_role_times_out(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("no-credential-role")
    _ready_for_vendor(settings)
    _wait(watch.poll_cluster, watcher, settings, sandbox)
    assert simulator.readiness_time(MEMBER) is not None
    with pytest.raises(TimedOut) as err:
        _wait(watch.poll_credential_role, watcher, settings, sandbox)
    assert str(err.value) == f"vendor role credential-service-role not found in {MEMBER} after 7200 s"


def test_v2_watch_only_reads_and_vendor_resources_carry_no_mlplane_tags(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("ok")
    _ready_for_vendor(settings)
    mark = recording.mark()
    _wait(watch.poll_cluster, watcher, settings, sandbox)
    _wait(watch.poll_credential_role, watcher, settings, sandbox)
    made = {call.call for call in recording.since(mark)}
    assert made and made <= READ_ONLY
    assert not [c for c in recording.since(mark) if c.call.startswith("iam:Create")]

    eks = watcher.client("eks")
    cluster = eks.describe_cluster(name=f"aac-{MEMBER}")["cluster"]
    assert cluster["tags"]["aac:managed"] == "true"
    assert not [key for key in cluster["tags"] if key.startswith("mlplane:")]
    role = watcher.client("iam").get_role(RoleName="credential-service-role")["Role"]
    assert {t["Key"] for t in role.get("Tags", [])} == set(vendor.VENDOR_TAGS)
    ids = simulator.vendor_resource_ids(MEMBER)
    assert {f"aac-{MEMBER}", cluster["arn"], "credential-service-role", "aac-ng-jobs", role["Arn"]} <= ids


def test_v2_teardown_removes_what_the_vendor_made(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("ok")
    _ready_for_vendor(settings)
    sandbox.advance(DURATION)
    assert watch.vendor_cluster(watcher, settings) == f"aac-{MEMBER}"
    simulator.teardown(MEMBER)
    assert watch.vendor_cluster(watcher, settings) is None
    assert not watch.role_exists(watcher, "credential-service-role")
    assert not watch.role_exists(watcher, vendor.CLUSTER_ROLE)


def test_v1_cluster_uses_the_aac_subnets_mlplane_made(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    ec2 = watcher.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/21")["Vpc"]["VpcId"]
    tagged = {}
    for group, cidr in (("eks_control", "10.10.0.0/27"), ("eks_node", "10.10.1.0/25")):
        tagged[group] = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=cidr,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "AACSubnet", "Value": group}]}],
        )["Subnet"]["SubnetId"]
    start("ok")
    _ready_for_vendor(settings)
    sandbox.advance(DURATION)
    eks = watcher.client("eks")
    name = f"aac-{MEMBER}"
    assert eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]["subnetIds"] == [tagged["eks_control"]]
    group = eks.describe_nodegroup(clusterName=name, nodegroupName="aac-ng-system")["nodegroup"]
    assert group["subnets"] == [tagged["eks_node"]]


def test_v1_vendor_starts_only_on_ready_for_vendor_once_per_account(
    start: Starter, settings: Settings, watcher: Member, sandbox: VirtualClock
) -> None:
    simulator = start("ok")
    notify.publish(settings, notify.message("READY", account_id=MEMBER, execution="exec-1"))
    assert not simulator.triggered(MEMBER)
    _ready_for_vendor(settings)
    first = simulator.vendor_resource_ids(MEMBER)
    sandbox.advance(10)
    _ready_for_vendor(settings)  # a duplicate notification
    assert simulator.vendor_resource_ids(MEMBER) == first
    assert not simulator.triggered(OTHER_MEMBER)
