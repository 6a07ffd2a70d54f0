"""EC2 eventual consistency: the sandbox's rule (mlplane_sandbox.fidelity.consistency) and mlplane's answer to it.

AWS source: the EC2 API guide, "Eventual consistency in the Amazon EC2 API": a describe or modify of a resource
you just created may answer that its ID does not exist; error codes from EC2's error-code reference
(InvalidVpcID.NotFound, InvalidSubnetID.NotFound, InvalidRouteTableID.NotFound, InvalidInternetGatewayID.NotFound,
NatGatewayNotFound, InvalidVpcEndpointId.NotFound, InvalidTransitGatewayAttachmentID.NotFound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlplane import consistency
from mlplane.config import Settings
from mlplane.ledger import ResourceState
from mlplane.member import Member, member_for
from mlplane.network import VPC, apply, lookup
from mlplane.rollback.registry import HANDLERS
from mlplane.rollback.run import undo_all
from mlplane_sandbox import recording
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import consistency as rule

from .conftest import MEMBER, REGION, shared_transit_gateway

DELAY = 5.0
ACTOR = "CreateNetworkFunction"  # calls made inside an actor are mlplane's (the rule plays them)


@pytest.fixture
def delay(sandbox: VirtualClock) -> Iterator[float]:
    rule.reset()
    rule.configure(delay_seconds=DELAY)
    yield DELAY
    rule.reset()


@pytest.fixture
def ec2(member: Member, delay: float) -> Any:
    return member.client("ec2")


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def _as_mlplane(fn: Callable[..., Any], **kwargs: Any) -> Any:
    with recording.actor(ACTOR):
        return fn(**kwargs)


def _vpc(ec2: Any) -> str:
    return str(_as_mlplane(ec2.create_vpc, CidrBlock="10.20.0.0/21")["Vpc"]["VpcId"])


def _settled_vpc(ec2: Any, sandbox: VirtualClock) -> str:
    vpc_id = _vpc(ec2)
    sandbox.advance(DELAY)
    return vpc_id


def _subnet(ec2: Any, vpc_id: str, cidr: str = "10.20.0.0/24") -> str:
    answer = _as_mlplane(ec2.create_subnet, VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{REGION}a")
    return str(answer["Subnet"]["SubnetId"])


# Each resource type: (create it, in a VPC that has settled) -> (describe call, its id parameter, the code)
def _create_route_table(ec2: Any, vpc_id: str) -> str:
    return str(_as_mlplane(ec2.create_route_table, VpcId=vpc_id)["RouteTable"]["RouteTableId"])


def _create_igw(ec2: Any, vpc_id: str) -> str:
    return str(_as_mlplane(ec2.create_internet_gateway)["InternetGateway"]["InternetGatewayId"])


def _create_nat(ec2: Any, vpc_id: str) -> str:
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]  # not mlplane's
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return str(_as_mlplane(ec2.create_nat_gateway, SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"])


def _create_vpce(ec2: Any, vpc_id: str) -> str:
    answer = _as_mlplane(
        ec2.create_vpc_endpoint, VpcEndpointType="Gateway", VpcId=vpc_id, ServiceName=f"com.amazonaws.{REGION}.s3"
    )
    return str(answer["VpcEndpoint"]["VpcEndpointId"])


def _create_tgw_attachment(ec2: Any, vpc_id: str) -> str:
    tgw = shared_transit_gateway(MEMBER)
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.2.0/24")["Subnet"]["SubnetId"]
    answer = _as_mlplane(
        ec2.create_transit_gateway_vpc_attachment, TransitGatewayId=tgw, VpcId=vpc_id, SubnetIds=[subnet]
    )
    return str(answer["TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"])


TYPES = {
    "subnet": (_subnet, "describe_subnets", "SubnetIds", "InvalidSubnetID.NotFound"),
    "route-table": (_create_route_table, "describe_route_tables", "RouteTableIds", "InvalidRouteTableID.NotFound"),
    "igw": (_create_igw, "describe_internet_gateways", "InternetGatewayIds", "InvalidInternetGatewayID.NotFound"),
    "nat": (_create_nat, "describe_nat_gateways", "NatGatewayIds", "NatGatewayNotFound"),
    "vpce": (_create_vpce, "describe_vpc_endpoints", "VpcEndpointIds", "InvalidVpcEndpointId.NotFound"),
    "tgw-attachment": (
        _create_tgw_attachment,
        "describe_transit_gateway_vpc_attachments",
        "TransitGatewayAttachmentIds",
        "InvalidTransitGatewayAttachmentID.NotFound",
    ),
}


def test_new_vpc_answers_not_found_within_the_delay_and_is_found_after(ec2: Any, sandbox: VirtualClock) -> None:
    vpc_id = _vpc(ec2)
    with pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])
    assert _code(caught) == "InvalidVpcID.NotFound"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert vpc_id in str(caught.value)
    sandbox.advance(DELAY - 0.5)
    with pytest.raises(ClientError):
        _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])
    sandbox.advance(0.5)
    assert [v["VpcId"] for v in _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])["Vpcs"]] == [vpc_id]


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_each_new_resource_answers_its_not_found_code_within_the_delay_and_is_found_after(
    ec2: Any, sandbox: VirtualClock, kind: str
) -> None:
    create, describe, parameter, code = TYPES[kind]
    resource_id = create(ec2, _settled_vpc(ec2, sandbox))
    with pytest.raises(ClientError) as caught:
        _as_mlplane(getattr(ec2, describe), **{parameter: [resource_id]})
    assert _code(caught) == code
    sandbox.advance(DELAY)
    assert _as_mlplane(getattr(ec2, describe), **{parameter: [resource_id]})  # found


def test_calls_taking_the_new_vpc_id_answer_not_found_and_change_nothing(ec2: Any, sandbox: VirtualClock) -> None:
    vpc_id = _vpc(ec2)
    uses: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (ec2.describe_vpc_attribute, {"VpcId": vpc_id, "Attribute": "enableDnsHostnames"}),
        (ec2.modify_vpc_attribute, {"VpcId": vpc_id, "EnableDnsHostnames": {"Value": True}}),
        (ec2.associate_vpc_cidr_block, {"VpcId": vpc_id, "CidrBlock": "100.64.0.0/16"}),
        (ec2.create_subnet, {"VpcId": vpc_id, "CidrBlock": "10.20.0.0/24"}),
        (ec2.create_route_table, {"VpcId": vpc_id}),
        (ec2.create_tags, {"Resources": [vpc_id], "Tags": [{"Key": "k", "Value": "v"}]}),
        (ec2.delete_vpc, {"VpcId": vpc_id}),
    ]
    for fn, kwargs in uses:
        with pytest.raises(ClientError) as caught:
            _as_mlplane(fn, **kwargs)
        assert _code(caught) == "InvalidVpcID.NotFound", fn
    sandbox.advance(DELAY)
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert len(vpc["CidrBlockAssociationSet"]) == 1 and not vpc.get("Tags")  # none of them reached moto
    assert ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"] == []


def test_route_and_association_on_a_new_route_table_and_a_new_gateway_answer_not_found(
    ec2: Any, sandbox: VirtualClock
) -> None:
    vpc_id = _settled_vpc(ec2, sandbox)
    subnet = _subnet(ec2, vpc_id)
    table = _create_route_table(ec2, vpc_id)
    igw = _create_igw(ec2, vpc_id)
    with pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.associate_route_table, RouteTableId=table, SubnetId=subnet)
    assert _code(caught) in ("InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound")
    with pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc_id)
    assert _code(caught) == "InvalidInternetGatewayID.NotFound"
    sandbox.advance(DELAY)
    _as_mlplane(ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc_id)
    new_table = _create_route_table(ec2, vpc_id)
    with pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.create_route, RouteTableId=new_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assert _code(caught) == "InvalidRouteTableID.NotFound"
    newer_igw = _create_igw(ec2, vpc_id)
    with pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.create_route, RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=newer_igw)
    assert _code(caught) == "InvalidGatewayID.NotFound"


def test_filters_the_sandbox_itself_and_delay_zero_see_the_new_vpc(ec2: Any, sandbox: VirtualClock) -> None:
    vpc_id = _vpc(ec2)
    by_filter = _as_mlplane(ec2.describe_vpcs, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    assert [v["VpcId"] for v in by_filter] == [vpc_id]  # filters are not played
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]  # a call outside mlplane's functions (world, inventory)
    rule.configure(delay_seconds=0)
    assert _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])["Vpcs"]


# -- mlplane's answer: NotFound right after its own create is retried, never "gone" ---------------------------
def _not_found_answers(mark: int) -> list[str]:
    return [c.call for c in recording.since(mark) if not c.ok and c.error and "NotFound" in c.error]


def test_settling_retries_not_found_on_botocores_back_off_until_the_id_is_visible(
    ec2: Any, sandbox: VirtualClock
) -> None:
    vpc_id = _vpc(ec2)
    with pytest.raises(ClientError):  # outside settling() a NotFound is the answer at once
        _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])
    slept = sandbox.slept
    with consistency.settling():
        assert _as_mlplane(ec2.describe_vpcs, VpcIds=[vpc_id])["Vpcs"]
    assert DELAY <= sandbox.slept - slept <= DELAY + consistency.delay_after(3)  # 2 + 4 virtual seconds


def test_settling_gives_up_after_its_window(ec2: Any, sandbox: VirtualClock) -> None:
    with consistency.settling(), pytest.raises(ClientError) as caught:
        _as_mlplane(ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"])  # really not there
    assert _code(caught) == "InvalidVpcID.NotFound"
    assert sandbox.slept == pytest.approx(consistency.WINDOW_SECONDS)


def test_apply_creates_the_network_while_new_ids_answer_not_found(
    member: Member, settings: Settings, delay: float, sandbox: VirtualClock
) -> None:
    mark = len(recording.since(0))
    with recording.actor(ACTOR):
        output = apply.run(member, settings)
    assert output.created > 0
    answers = _not_found_answers(mark)
    assert "ec2:DescribeVpcAttribute" in answers and "ec2:DescribeInternetGateways" in answers
    vpc = member.client("ec2").describe_vpc_attribute(VpcId=output.detail["vpc_id"], Attribute="enableDnsHostnames")
    assert vpc["EnableDnsHostnames"]["Value"] is True


def _just_created_vpc(member: Member) -> str:
    vpc_id, _ = member.ensure(
        key="vpc",
        type=VPC,
        find=lambda: None,
        create=lambda: str(
            lookup.call(
                member,
                "create_vpc",
                CidrBlock="10.30.0.0/21",
                TagSpecifications=[{"ResourceType": "vpc", "Tags": member.tag_list("vpc")}],
            )["Vpc"]["VpcId"]
        ),
    )
    return vpc_id


def test_rollback_of_a_vpc_created_a_moment_ago_removes_it_instead_of_calling_it_gone(
    member: Member, delay: float, sandbox: VirtualClock
) -> None:
    with recording.actor(ACTOR):
        vpc_id = _just_created_vpc(member)
        mark = len(recording.since(0))
        report = undo_all(member, member.ledger.resources(MEMBER), HANDLERS)
    assert "ec2:DescribeVpcs" in _not_found_answers(mark)  # the rollback did meet the NotFound
    assert report.removed == 1
    remaining = member.client("ec2").describe_vpcs()["Vpcs"]
    assert vpc_id not in {v["VpcId"] for v in remaining}  # no orphan
    assert member.ledger.resource(MEMBER, "vpc").state == ResourceState.DELETED  # type: ignore[union-attr]


def test_deprovision_of_an_earlier_executions_vpc_deleted_by_hand_is_gone_at_once(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    with recording.actor(ACTOR):
        vpc_id = _just_created_vpc(member)
    member.client("ec2").delete_vpc(VpcId=vpc_id)  # by hand
    later = member_for(MEMBER, "dp-111111111111-later", "RemoveNetwork", settings)
    slept = sandbox.slept
    with recording.actor("RemoveNetworkFunction"):
        report = undo_all(later, later.ledger.resources(MEMBER), HANDLERS)
    assert report.removed == 0 and report.blocked == []
    assert sandbox.slept == slept  # no consistency window for a record of another execution
    assert later.ledger.resources(MEMBER) == []
