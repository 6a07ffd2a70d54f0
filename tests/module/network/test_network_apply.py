"""CreateNetwork against moto behind the sandbox (REQUIREMENTS N1-N5, C3, C6)."""

from __future__ import annotations

import ipaddress
from typing import Any

import boto3
import pytest

from mlplane.config import Settings
from mlplane.errors import Blocked, Conflict
from mlplane.ledger import ResourceState, Status
from mlplane.member import Member
from mlplane.network import NETWORK_TYPES, allocation, apply, undo
from mlplane.rollback.registry import HANDLERS
from mlplane.rollback.run import teardown
from mlplane_sandbox import faults, interceptor, recording
from mlplane_sandbox.clock import VirtualClock
from tests.module.network.conftest import TABLE, CallLog, mutating, shared_transit_gateway

N2 = {
    "eks_node": ["10.64.0.0/21", "10.64.8.0/21", "10.64.16.0/21"],
    "eks_control": ["10.10.0.0/27", "10.10.0.32/27", "10.10.0.64/27"],
    "public": ["10.10.0.128/27", "10.10.0.160/27", "10.10.0.192/27"],
    "private": ["10.10.1.0/25", "10.10.1.128/25", "10.10.2.0/25"],
}


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", item.get("TagSet", []))}


def _mine(member: Member) -> list[dict[str, Any]]:
    return [{"Name": "tag:mlplane:account", "Values": [member.account_id]}]


def inventory(member: Member) -> dict[str, list[dict[str, Any]]]:
    """Every live mlplane-tagged network resource of the member account."""
    ec2 = member.client("ec2")
    flt = _mine(member)
    nats = [
        n
        for n in ec2.describe_nat_gateways()["NatGateways"]
        if n["State"] not in ("deleted", "deleting") and _tags(n).get("mlplane:account") == member.account_id
    ]
    endpoints = [
        e
        for e in ec2.describe_vpc_endpoints(Filters=flt)["VpcEndpoints"]
        if e["State"].lower() not in ("deleted", "deleting")
    ]
    return {
        "vpcs": ec2.describe_vpcs(Filters=flt)["Vpcs"],
        "subnets": ec2.describe_subnets(Filters=flt)["Subnets"],
        "route_tables": ec2.describe_route_tables(Filters=flt)["RouteTables"],
        "igws": ec2.describe_internet_gateways(Filters=flt)["InternetGateways"],
        "eips": ec2.describe_addresses(Filters=flt)["Addresses"],
        "nats": nats,
        "endpoints": endpoints,
    }


def _counts(member: Member) -> dict[str, int]:
    return {kind: len(items) for kind, items in inventory(member).items()}


def test_n1_n4_apply_creates_exact_inventory(member: Member, settings: Settings, sandbox: VirtualClock) -> None:
    out = apply.run(member, settings)
    ec2 = member.client("ec2")
    inv = inventory(member)
    assert _counts(member) == {
        "vpcs": 1,
        "subnets": 12,
        "route_tables": 12,
        "igws": 1,
        "eips": 3,
        "nats": 3,
        "endpoints": 1,
    }
    # N1: VPC, both CIDRs, DNS
    vpc = inv["vpcs"][0]
    vpc_id = vpc["VpcId"]
    assert out.detail["vpc_id"] == vpc_id
    assert _tags(vpc)["Name"] == "aac_vpc"
    assert _tags(vpc)["mlplane:managed"] == "true"
    assert {a["CidrBlock"] for a in vpc["CidrBlockAssociationSet"]} == {"10.10.0.0/21", "10.64.0.0/18"}
    for attribute, field in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[field]["Value"] is True
    # N2: twelve subnets, exact CIDRs per AZ, tags
    by_group: dict[str, list[tuple[str, str]]] = {}
    for subnet in inv["subnets"]:
        tags = _tags(subnet)
        assert subnet["VpcId"] == vpc_id
        by_group.setdefault(tags["AACSubnet"], []).append((subnet["AvailabilityZone"], subnet["CidrBlock"]))
        role = "kubernetes.io/role/elb" if tags["AACSubnet"] == "public" else "kubernetes.io/role/internal-elb"
        assert tags[role] == "1"
        assert tags["Name"] == f"{tags['AACSubnet']}-{subnet['AvailabilityZone']}"
    assert {g: [c for _, c in sorted(v)] for g, v in by_group.items()} == N2
    # every resource is in the ledger, created, with its id
    records = {r.key: r for r in member.ledger.resources(member.account_id)}
    plan = apply.plan_for(member, settings)
    assert set(plan.ledger_keys()) == set(records)
    assert all(r.state == ResourceState.CREATED and r.resource_id for r in records.values())
    assert records["vpc"].resource_id == vpc_id
    assert out.created == len(records)


def test_n3_n4_apply_routes_gateways_and_endpoint(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    inv = inventory(member)
    subnet_az = {s["SubnetId"]: s["AvailabilityZone"] for s in inv["subnets"]}
    # N4: NAT per AZ in the public subnet with its EIP; IGW attached; endpoint on the 9 non-public tables
    public_subnets = {s["SubnetId"] for s in inv["subnets"] if _tags(s)["AACSubnet"] == "public"}
    nat_az = {}
    for nat in inv["nats"]:
        assert nat["State"] == "available"
        assert nat["SubnetId"] in public_subnets
        assert nat["NatGatewayAddresses"][0]["AllocationId"] in {e["AllocationId"] for e in inv["eips"]}
        nat_az[nat["NatGatewayId"]] = subnet_az[nat["SubnetId"]]
    assert sorted(nat_az.values()) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    igw = inv["igws"][0]
    assert [a["VpcId"] for a in igw["Attachments"]] == [inv["vpcs"][0]["VpcId"]]
    endpoint = inv["endpoints"][0]
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.s3"
    assert endpoint["VpcEndpointType"] == "Gateway"
    # N3: one table per subnet; default route via same-AZ NAT (non-public) or the IGW (public)
    non_public_tables = set()
    for table in inv["route_tables"]:
        assocs = [a["SubnetId"] for a in table["Associations"] if a.get("SubnetId")]
        assert len(assocs) == 1
        subnet_id = assocs[0]
        group = _tags(table)["mlplane:key"].split("/")[1]
        default = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        if group == "public":
            assert default["GatewayId"] == igw["InternetGatewayId"]
        else:
            non_public_tables.add(table["RouteTableId"])
            assert nat_az[default["NatGatewayId"]] == subnet_az[subnet_id]
    assert set(endpoint["RouteTableIds"]) == non_public_tables
    assert len(non_public_tables) == 9


def test_n4_routes_wait_for_nat_gateways_to_be_available(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    """In the sandbox a NAT gateway is `pending` for 60 s: the waiter must sleep (virtually) before routing."""
    apply.run(member, settings)
    assert sandbox.slept >= 60
    states = {n["State"] for n in member.client("ec2").describe_nat_gateways()["NatGateways"]}
    assert states == {"available"}


def test_c6_second_run_creates_nothing(member: Member, settings: Settings, ec2_calls: CallLog) -> None:
    first = apply.run(member, settings)
    before = len(ec2_calls())
    before_counts = _counts(member)
    second = apply.run(member, settings)
    assert mutating(ec2_calls()[before:]) == []
    assert second.created == 0
    assert second.existing == first.created
    assert second.detail == first.detail
    assert _counts(member) == before_counts


def _forget_ids(member: Member, keys: list[str]) -> None:
    """Make the ledger look as if the Lambda died between each create and its ledger write."""
    db = boto3.client("dynamodb", region_name=member.region)
    for key in keys:
        db.update_item(
            TableName=TABLE,
            Key={"pk": {"S": member.account_id}, "sk": {"S": f"RES#{key}"}},
            UpdateExpression="SET #s = :intent REMOVE resource_id",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":intent": {"S": "intent"}},
        )


def test_c6_lost_ledger_writes_converge_without_duplicates(
    member: Member, settings: Settings, ec2_calls: CallLog
) -> None:
    apply.run(member, settings)
    ids = {r.key: r.resource_id for r in member.ledger.resources(member.account_id)}
    counts = _counts(member)
    lost = ["vpc", "vpc-cidr/secondary", "subnet/eks_node/a", "eip/b", "nat/b", "vpce/s3", "igw",
            "rtb-assoc/public/a", "route/private/c/default"]  # fmt: skip
    _forget_ids(member, lost)
    assert member.ledger.resource(member.account_id, "nat/b").state == ResourceState.INTENT  # type: ignore[union-attr]
    before = len(ec2_calls())
    again = apply.run(member, settings)
    assert mutating(ec2_calls()[before:]) == []
    assert again.created == 0
    assert _counts(member) == counts
    after = {r.key: r for r in member.ledger.resources(member.account_id)}
    for key in lost:
        assert after[key].state == ResourceState.CREATED
        assert after[key].resource_id == ids[key]


def test_c6_crash_right_after_create_nat_gateway_converges(member: Member, settings: Settings) -> None:
    """The Lambda dies after the 2nd CreateNatGateway succeeded: the re-run finds it, no second NAT."""
    interceptor.configure(plan=faults.FaultPlan(crashes=[faults.parse_fault("ec2:CreateNatGateway@2", crash=True)]))
    with recording.actor("CreateNetwork"), pytest.raises(faults.LambdaCrash):
        apply.run(member, settings)
    assert member.ledger.resource(member.account_id, "nat/b").state == ResourceState.INTENT  # type: ignore[union-attr]
    interceptor.configure()
    apply.run(member, settings)
    assert _counts(member)["nats"] == 3
    assert _counts(member)["eips"] == 3


def test_c3_teardown_removes_everything_mlplane_created(member: Member, settings: Settings) -> None:
    ec2 = member.client("ec2")
    foreign_vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]  # not mlplane's
    apply.run(member, settings)
    out = teardown(member, "network", undo.HANDLERS)
    assert _counts(member) == dict.fromkeys(("vpcs", "subnets", "route_tables", "igws", "eips", "nats", "endpoints"), 0)
    assert out.removed > 0
    assert member.ledger.resources(member.account_id) == []
    assert foreign_vpc in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    again = teardown(member, "network", undo.HANDLERS)
    assert again.removed == 0


def test_c3_teardown_after_lost_ledger_write_still_finds_by_tag(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    _forget_ids(member, ["vpc", "subnet/private/b", "nat/a", "eip/a", "igw"])
    teardown(member, "network", undo.HANDLERS)
    assert sum(_counts(member).values()) == 0


def test_v2_teardown_blocked_by_vendor_eni_names_it(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    ec2 = member.client("ec2")
    subnet = member.ledger.resource(member.account_id, "subnet/eks_node/b")
    assert subnet is not None and subnet.resource_id
    eni = ec2.create_network_interface(SubnetId=subnet.resource_id, Description="aac eks node")["NetworkInterface"]
    with pytest.raises(Blocked) as caught:
        teardown(member, "network", undo.HANDLERS)
    message = str(caught.value)
    assert eni["NetworkInterfaceId"] in message
    assert subnet.resource_id in message
    assert "\n" not in message
    # what it could remove before the blocker is gone; the blocked subnet and the VPC stay
    counts = _counts(member)
    assert counts["nats"] == 0 and counts["eips"] == 0
    assert counts["vpcs"] == 1
    assert subnet.resource_id in {s["SubnetId"] for s in inventory(member)["subnets"]}
    # the vendor removes its ENI: teardown resumes and finishes
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    teardown(member, "network", undo.HANDLERS)
    assert sum(_counts(member).values()) == 0


def test_v2_teardown_blocked_by_a_foreign_security_group_names_it(member: Member, settings: Settings) -> None:
    """DeleteVpc refuses while a security group other than the default one is in the VPC (EC2 API reference,
    DeleteVpc): the VPC stays, the group is named, and teardown finishes once the group is gone."""
    apply.run(member, settings)
    ec2 = member.client("ec2")
    vpc = member.ledger.resource(member.account_id, "vpc")
    assert vpc is not None and vpc.resource_id
    group = ec2.create_security_group(
        GroupName=f"eks-cluster-sg-aac-{member.account_id}-0123456789", Description="EKS", VpcId=vpc.resource_id
    )["GroupId"]
    with pytest.raises(Blocked) as caught:
        teardown(member, "network", undo.HANDLERS)
    assert group in str(caught.value) and vpc.resource_id in str(caught.value)
    assert _counts(member)["vpcs"] == 1 and _counts(member)["subnets"] == 0
    ec2.delete_security_group(GroupId=group)
    teardown(member, "network", undo.HANDLERS)
    assert sum(_counts(member).values()) == 0


def test_v2_undo_leaves_resources_without_mlplane_tags_alone(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    ec2 = member.client("ec2")
    record = member.ledger.resource(member.account_id, "rtb/private/a")
    assert record is not None and record.resource_id
    ec2.delete_tags(Resources=[record.resource_id], Tags=[{"Key": "mlplane:managed"}])
    outcome = HANDLERS["ec2:route-table"].undo(member, record, record.resource_id)
    assert outcome.outcome == "gone"
    assert "left alone" in outcome.reason
    assert ec2.describe_route_tables(RouteTableIds=[record.resource_id])["RouteTables"]


def test_registered_types_cover_every_ledger_type(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    types = {r.type for r in member.ledger.resources(member.account_id)}
    assert types <= NETWORK_TYPES
    assert set(HANDLERS) >= NETWORK_TYPES


def test_n5_tgw_mode_allocates_disjoint_cidrs_and_frees_them(
    member: Member, other_member: Member, settings: Settings
) -> None:
    tgw = shared_transit_gateway(member.account_id, other_member.account_id)
    first = settings.model_copy(update={"egress_mode": "tgw", "transit_gateway_id": tgw})
    out1 = apply.run(member, first)
    out2 = apply.run(other_member, first)
    blocks = [ipaddress.IPv4Network(c) for c in out1.detail["cidrs"] + out2.detail["cidrs"]]
    pool = ipaddress.IPv4Network(settings.cidr_pool)
    assert all(b.subnet_of(pool) for b in blocks)
    assert not any(a.overlaps(b) for a in blocks[:2] for b in blocks[2:])
    assert allocation.lookup(member.ledger, member.account_id, settings.cidr_pool) is not None
    # a re-run keeps the same allocation
    assert apply.run(member, first).detail["cidrs"] == out1.detail["cidrs"]
    # N4 tgw: attachment in eks_control subnets, every default route to the TGW, no NAT/IGW/EIP
    ec2 = member.client("ec2")
    inv = inventory(member)
    assert (len(inv["nats"]), len(inv["igws"]), len(inv["eips"])) == (0, 0, 0)
    control = {s["SubnetId"] for s in inv["subnets"] if _tags(s)["AACSubnet"] == "eks_control"}
    attachments = ec2.describe_transit_gateway_vpc_attachments(
        Filters=[{"Name": "vpc-id", "Values": [out1.detail["vpc_id"]]}]
    )["TransitGatewayVpcAttachments"]
    assert len(attachments) == 1
    assert set(attachments[0]["SubnetIds"]) == control
    for table in inv["route_tables"]:
        default = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        assert default["TransitGatewayId"] == first.transit_gateway_id
    # deprovision frees the allocation; the other account keeps its own
    teardown(member, "network", undo.HANDLERS)
    assert allocation.lookup(member.ledger, member.account_id, settings.cidr_pool) is None
    assert allocation.lookup(other_member.ledger, other_member.account_id, settings.cidr_pool) is not None
    assert sum(_counts(member).values()) == 0
    live = [
        a
        for a in ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
        if a["State"] not in ("deleted", "deleting")
    ]
    assert live == []


def test_n5_plan_for_changes_nothing(member: Member, settings: Settings, ec2_calls: CallLog) -> None:
    tgw = settings.model_copy(update={"egress_mode": "tgw", "transit_gateway_id": "tgw-0123456789abcdef0"})
    plan = apply.plan_for(member, tgw)
    assert mutating(ec2_calls()) == []
    assert allocation.lookup(member.ledger, member.account_id, tgw.cidr_pool) is None
    assert plan.vpc.cidr == "10.128.64.0/21"
    assert plan.vpc.secondary_cidr == "10.128.0.0/18"


def test_c3_stops_creating_once_rollback_began(member: Member, settings: Settings, ec2_calls: CallLog) -> None:
    """A Parallel branch still running after its sibling failed must not create behind the rollback."""
    member.ledger.set_status(member.account_id, Status.ROLLING_BACK, execution=member.execution)
    with pytest.raises(Conflict, match="ROLLING_BACK"):
        apply.run(member, settings)
    assert mutating(ec2_calls()) == []
    assert member.ledger.resources(member.account_id) == []


def test_c3_rollback_sweeps_mlplane_resources_the_ledger_never_recorded(member: Member, settings: Settings) -> None:
    """Creates that raced the rollback's walk left no ledger record: the VPC's undo finds them by their tags."""
    apply.run(member, settings)
    db = boto3.client("dynamodb", region_name=member.region)
    for key in ["subnet/private/a", "subnet/eks_node/c", "nat/b", "eip/b", "rtb/public/c", "rtb-assoc/public/c",
                "route/public/c/default", "route/eks_node/b/default", "vpce/s3", "igw"]:  # fmt: skip
        db.delete_item(TableName=TABLE, Key={"pk": {"S": member.account_id}, "sk": {"S": f"RES#{key}"}})
    foreign = member.client("ec2").create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    teardown(member, "network", undo.HANDLERS)
    assert sum(_counts(member).values()) == 0
    assert foreign in {v["VpcId"] for v in member.client("ec2").describe_vpcs()["Vpcs"]}


def test_nat_gateway_failed_for_want_of_an_attached_igw_is_retried_with_a_new_token(
    member: Member, settings: Settings
) -> None:
    """A public NAT gateway created before its VPC's internet gateway is attached fails (Gateway.NotAttached)
    and its client token keeps answering with the failed one: the step fails as transient, naming the code,
    and its retry asks for new gateways (a token that includes the failed ones) once the gateway is attached."""
    from mlplane.errors import TransientError
    from mlplane.network.plan import plan_network

    plan = plan_network(settings, apply.observe_azs(member), cidrs=None)
    step = apply._Run(member, plan)
    vpc_id = step.vpc()
    step.route_tables_and_subnets(vpc_id)
    step.endpoint(vpc_id)  # the internet gateway is not attached yet (the race of giantswarm/aws-operator#1234)
    with pytest.raises(TransientError, match=r"Gateway\.NotAttached"):
        step.nat_gateways()
    failed = {n["NatGatewayId"] for n in member.client("ec2").describe_nat_gateways()["NatGateways"]}
    assert len(failed) == 3
    retry = apply._Run(member, plan)  # the Task's retry runs the step again
    retry.ids = dict(step.ids)
    retry.internet_gateway(vpc_id)
    retry.nat_gateways()
    nats = member.client("ec2").describe_nat_gateways()["NatGateways"]
    live = {n["NatGatewayId"] for n in nats if n["State"] == "available"}
    assert len(live) == 3 and not live & failed
    recorded = {r.resource_id for r in member.ledger.resources(member.account_id) if r.type == "ec2:nat"}
    assert recorded == live


def test_a_new_resource_costs_one_ledger_read_before_its_intent(member: Member, settings: Settings) -> None:
    """Before each resource, one ledger call reads both the account's status (a rollback that began stops the
    step) and the resource's record (BatchGetItem), and `ensure` hands what it found (nothing, for a new
    resource) to `record_intent`: a GetItem each, or a second read of the record before its intent is written,
    are DynamoDB calls per resource for nothing (120 of them in a fresh account's network)."""
    calls: list[tuple[str, list[str]]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "BatchGetItem":
            keys = [key["sk"]["S"] for table in params["RequestItems"].values() for key in table["Keys"]]
        elif model.name == "BatchWriteItem":
            keys = [r["PutRequest"]["Item"]["sk"]["S"] for table in params["RequestItems"].values() for r in table]
        else:
            keys = [params.get("Key", params.get("Item", {})).get("sk", {}).get("S", "")]
        calls.append((model.name, keys))

    member.ledger._db.meta.events.register("before-parameter-build.dynamodb", hook)
    result = apply.run(member, settings)
    reads_before_write: dict[str, int] = {}
    written: set[str] = set()
    for operation, keys in calls:
        for sk in keys:
            if operation in ("PutItem", "BatchWriteItem"):
                written.add(sk)
            elif sk.startswith("RES#") and sk not in written:
                reads_before_write[sk] = reads_before_write.get(sk, 0) + 1
    assert result.created > 50
    assert len(reads_before_write) == result.created
    assert {sk: n for sk, n in reads_before_write.items() if n != 1} == {}
    status_reads = [(operation, keys) for operation, keys in calls if "STATUS" in keys]
    assert len(status_reads) == result.created  # one per resource, the same call as its record's
    assert all(operation == "BatchGetItem" and len(keys) == 2 for operation, keys in status_reads)
    # each resource's CREATED goes with the next one's INTENT (Ledger.writing_behind): one write per resource,
    # and one more for the last CREATED
    writes = [keys for operation, keys in calls if operation in ("PutItem", "BatchWriteItem")]
    assert len(writes) == result.created + 1
    assert sum(len(keys) for keys in writes) == 2 * result.created
