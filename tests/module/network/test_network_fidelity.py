"""The sandbox's EC2 fidelity rules, through boto3 (mlplane_sandbox.fidelity.network): AWS's answers, not moto's."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlplane.member import Member
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import network as fidelity


@pytest.fixture
def ec2(member: Member) -> Any:
    return member.client("ec2")


@pytest.fixture
def vpc(ec2: Any) -> dict[str, str]:
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/21")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.0.128/27", AvailabilityZone="eu-west-1a")
    other = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.0.160/27", AvailabilityZone="eu-west-1b")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return {
        "vpc": vpc_id,
        "subnet": subnet["Subnet"]["SubnetId"],
        "other_subnet": other["Subnet"]["SubnetId"],
        "igw": igw,
        "eip": eip,
    }


def _nat(ec2: Any, vpc: dict[str, str], token: str = "tok-1", **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"SubnetId": vpc["subnet"], "AllocationId": vpc["eip"], **extra}
    if token:
        args["ClientToken"] = token
    return dict(ec2.create_nat_gateway(**args)["NatGateway"])


def _state(ec2: Any, nat_id: str) -> str:
    return str(ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"])


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_nat_gateway_is_pending_then_available_after_60_virtual_seconds(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    nat = _nat(ec2, vpc, TagSpecifications=[{"ResourceType": "natgateway", "Tags": [{"Key": "k", "Value": "v"}]}])
    assert nat["State"] == "pending"
    assert nat["SubnetId"] == vpc["subnet"] and nat["VpcId"] == vpc["vpc"]
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == vpc["eip"]
    assert nat["Tags"] == [{"Key": "k", "Value": "v"}]
    sandbox.advance(59)
    assert _state(ec2, nat["NatGatewayId"]) == "pending"
    sandbox.advance(1)
    assert _state(ec2, nat["NatGatewayId"]) == "available"


def test_nat_gateway_available_waiter_sleeps_on_the_virtual_clock(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    nat = _nat(ec2, vpc)
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig={"Delay": 15})
    assert _state(ec2, nat["NatGatewayId"]) == "available"
    assert 60 <= sandbox.slept <= 75


def test_nat_gateway_delete_goes_deleting_then_deleted_and_frees_eip_and_eni(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    nat = _nat(ec2, vpc)
    sandbox.advance(60)
    eni = nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    assert _state(ec2, nat["NatGatewayId"]) == "deleting"
    sandbox.advance(30)
    assert _state(ec2, nat["NatGatewayId"]) == "deleting"
    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat["NatGatewayId"]])
    assert _state(ec2, nat["NatGatewayId"]) == "deleted"
    address = ec2.describe_addresses(AllocationIds=[vpc["eip"]])["Addresses"][0]
    assert not address.get("AssociationId")
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [vpc["subnet"]]}])
    assert eni not in {e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]}


def test_delete_unknown_nat_gateway_is_not_found(ec2: Any, vpc: dict[str, str]) -> None:
    with pytest.raises(ClientError) as caught:
        ec2.delete_nat_gateway(NatGatewayId="nat-0123456789abcdef0")
    assert _code(caught) == "NatGatewayNotFound"


def test_create_nat_gateway_honours_client_token(ec2: Any, vpc: dict[str, str]) -> None:
    first = _nat(ec2, vpc, token="same")
    again = _nat(ec2, vpc, token="same")
    assert again["NatGatewayId"] == first["NatGatewayId"]
    live = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"]
    assert len(live) == 1
    with pytest.raises(ClientError) as caught:
        _nat(ec2, {**vpc, "subnet": vpc["other_subnet"]}, token="same")
    assert _code(caught) == "IdempotentParameterMismatch"


def test_create_nat_gateway_in_unknown_subnet_is_refused(ec2: Any, vpc: dict[str, str]) -> None:
    with pytest.raises(ClientError) as caught:
        _nat(ec2, {**vpc, "subnet": "subnet-0123456789abcdef0"}, token="t2")
    assert _code(caught) == "InvalidSubnetID.NotFound"


def test_reset_forgets_client_tokens(ec2: Any, vpc: dict[str, str]) -> None:
    first = _nat(ec2, vpc, token="tok")
    fidelity.reset()
    second = _nat(ec2, {**vpc, "eip": ec2.allocate_address(Domain="vpc")["AllocationId"]}, token="tok")
    assert second["NatGatewayId"] != first["NatGatewayId"]


def test_delete_subnet_with_nat_gateway_is_dependency_violation(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    nat = _nat(ec2, vpc)
    with pytest.raises(ClientError) as caught:
        ec2.delete_subnet(SubnetId=vpc["subnet"])
    assert _code(caught) == "DependencyViolation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    with pytest.raises(ClientError):
        ec2.delete_subnet(SubnetId=vpc["subnet"])  # still `deleting`
    sandbox.advance(60)
    ec2.delete_subnet(SubnetId=vpc["subnet"])
    assert vpc["subnet"] not in {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}


def test_delete_subnet_with_network_interface_is_dependency_violation(ec2: Any, vpc: dict[str, str]) -> None:
    eni = ec2.create_network_interface(SubnetId=vpc["other_subnet"])["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as caught:
        ec2.delete_subnet(SubnetId=vpc["other_subnet"])
    assert _code(caught) == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_subnet(SubnetId=vpc["other_subnet"])


def test_release_address_on_nat_gateway_is_in_use(ec2: Any, vpc: dict[str, str], sandbox: VirtualClock) -> None:
    nat = _nat(ec2, vpc)
    with pytest.raises(ClientError) as caught:
        ec2.release_address(AllocationId=vpc["eip"])
    assert _code(caught) == "InvalidIPAddress.InUse"
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    with pytest.raises(ClientError) as caught:
        ec2.release_address(AllocationId=vpc["eip"])
    assert _code(caught) == "InvalidIPAddress.InUse"
    sandbox.advance(60)
    ec2.release_address(AllocationId=vpc["eip"])
    assert ec2.describe_addresses()["Addresses"] == []


def test_detach_internet_gateway_with_mapped_addresses_is_dependency_violation(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    nat = _nat(ec2, vpc)
    with pytest.raises(ClientError) as caught:
        ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    assert _code(caught) == "DependencyViolation"
    assert "mapped public address" in caught.value.response["Error"]["Message"]
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    sandbox.advance(60)
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])


def test_delete_attached_internet_gateway_is_dependency_violation(ec2: Any, vpc: dict[str, str]) -> None:
    with pytest.raises(ClientError) as caught:
        ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"])
    assert _code(caught) == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"])


def _hub_transit_gateway(share_with: str | None) -> str:
    """A transit gateway in the hub account (123456789012), shared through RAM with `share_with`."""
    hub_ec2 = boto3.client("ec2", region_name="eu-west-1")
    tgw = hub_ec2.create_transit_gateway(Description="network hub")["TransitGateway"]
    if share_with:
        boto3.client("ram", region_name="eu-west-1").create_resource_share(
            name="egress", resourceArns=[tgw["TransitGatewayArn"]], principals=[share_with]
        )
    return str(tgw["TransitGatewayId"])


def test_n4_attach_to_transit_gateway_shared_through_ram(ec2: Any, vpc: dict[str, str]) -> None:
    tgw = _hub_transit_gateway(share_with="111111111111")
    attachment = ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=tgw, VpcId=vpc["vpc"], SubnetIds=[vpc["subnet"]]
    )["TransitGatewayVpcAttachment"]
    assert attachment["TransitGatewayId"] == tgw
    table = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert {r.get("TransitGatewayId") for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"} == {tgw}


def test_n4_transit_gateway_not_shared_cannot_be_attached(ec2: Any, vpc: dict[str, str]) -> None:
    tgw = _hub_transit_gateway(share_with=None)
    with pytest.raises(ClientError) as caught:
        ec2.create_transit_gateway_vpc_attachment(TransitGatewayId=tgw, VpcId=vpc["vpc"], SubnetIds=[vpc["subnet"]])
    assert "NotFound" in _code(caught)


def test_deleted_route_table_leaves_its_gateway_endpoint_deletable(ec2: Any, vpc: dict[str, str]) -> None:
    table = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Gateway", VpcId=vpc["vpc"], ServiceName="com.amazonaws.eu-west-1.s3", RouteTableIds=[table]
    )["VpcEndpoint"]["VpcEndpointId"]
    ec2.delete_route_table(RouteTableId=table)
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["RouteTableIds"] == []
    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint]).get("Unsuccessful", []) == []
