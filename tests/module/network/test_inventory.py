"""The sandbox's read-back of a member account (mlplane_sandbox.inventory): what is there, and what is left over."""

from __future__ import annotations

from typing import Any

from mlplane.member import Member
from mlplane_sandbox import inventory
from mlplane_sandbox.clock import VirtualClock


def _tags(member: Member, key: str) -> list[dict[str, str]]:
    return member.tag_list(key, {})


def test_deleted_vpc_endpoint_is_neither_listed_nor_a_leftover(member: Member, sandbox: VirtualClock) -> None:
    """EC2 still describes a deleted endpoint (State `deleted`); it is no longer in the account."""
    ec2 = member.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/21")["Vpc"]["VpcId"]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    spec: list[Any] = [{"ResourceType": "vpc-endpoint", "Tags": _tags(member, "vpce/s3")}]
    args = {"VpcEndpointType": "Gateway", "VpcId": vpc_id, "ServiceName": "com.amazonaws.eu-west-1.s3"}
    gone = ec2.create_vpc_endpoint(**args, RouteTableIds=[table], TagSpecifications=spec)["VpcEndpoint"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gone["VpcEndpointId"]])
    live = ec2.create_vpc_endpoint(**args, RouteTableIds=[table], TagSpecifications=spec)["VpcEndpoint"]
    assert {e["State"].lower() for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]} == {"deleted", "available"}
    read = inventory.read(member.account_id)
    assert [e["id"] for e in read["vpc_endpoints"]] == [live["VpcEndpointId"]]
    leftovers = inventory.mlplane_resources(read, member.account_id)
    assert [r["id"] for r in leftovers if r["type"] == "ec2:vpce"] == [live["VpcEndpointId"]]


def test_failed_nat_gateway_is_listed_with_its_state_but_no_leftover(member: Member, sandbox: VirtualClock) -> None:
    """A failed NAT gateway holds no address nor interface and AWS removes it by itself (NatGateway.State)."""
    ec2 = member.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/21")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.0.128/27")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    spec: list[Any] = [{"ResourceType": "natgateway", "Tags": _tags(member, "nat/a")}]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, TagSpecifications=spec)["NatGateway"]
    sandbox.advance(60)  # no internet gateway: failed
    read = inventory.read(member.account_id)
    assert [(n["id"], n["state"]) for n in read["nat_gateways"]] == [(nat["NatGatewayId"], "failed")]
    assert [r for r in inventory.mlplane_resources(read, member.account_id) if r["type"] == "ec2:nat"] == []
