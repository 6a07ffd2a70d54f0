"""The sandbox's EC2 fidelity rules, through boto3 (mlplane_sandbox.fidelity.network): AWS's answers, not moto's."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.config import Settings
from mlplane.member import Member, session_policy
from mlplane_sandbox import vendor
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import network as fidelity
from tests.module.network.conftest import MEMBER, REGION, shared_transit_gateway


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


def _vendor_in(ec2: Any, vpc: dict[str, str], sandbox: VirtualClock) -> vendor.VendorSimulator:
    """The AAC admin triggered the data plane on this VPC: its cluster in `subnet`, its nodes in `other_subnet`."""
    ec2.create_tags(Resources=[vpc["subnet"]], Tags=[{"Key": "AACSubnet", "Value": "eks_control"}])
    ec2.create_tags(Resources=[vpc["other_subnet"]], Tags=[{"Key": "AACSubnet", "Value": "eks_node"}])
    simulator = vendor.start("ok", sandbox)
    simulator.trigger(MEMBER, REGION)
    sandbox.advance(vendor.DEFAULT_DURATION_SECONDS)
    return simulator


def test_delete_subnet_with_the_vendors_eks_interfaces_is_dependency_violation_until_the_vendor_is_removed(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    """DeleteSubnet (EC2 API reference): "You must terminate all running instances in the subnet before you can
    delete the subnet"; the EKS user guide ("View Amazon EKS networking requirements for VPC and subnets"): EKS
    "creates up to four network interfaces" in the cluster's subnets, each with "Amazon EKS <cluster name>" in its
    description, and the nodes' interfaces sit in theirs. Both subnets answer DependencyViolation until the AAC
    admin removes the data plane."""
    simulator = _vendor_in(ec2, vpc, sandbox)
    try:
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]}])[
            "NetworkInterfaces"
        ]
        control = [e for e in enis if e["SubnetId"] == vpc["subnet"]]
        nodes = [e for e in enis if e["SubnetId"] == vpc["other_subnet"]]
        assert [e["Description"] for e in control] == [f"Amazon EKS aac-{MEMBER}"]
        assert control[0]["RequesterManaged"] is True and control[0]["InterfaceType"] == "interface"
        assert len(nodes) == 2 * len(vendor.NODEGROUPS) and all(
            e["Description"].startswith("aws-K8S-i-") for e in nodes
        )
        (group,) = {g["GroupName"] for e in enis for g in e["Groups"]}
        assert group.startswith(f"eks-cluster-sg-aac-{MEMBER}-")
        for subnet_id in (vpc["subnet"], vpc["other_subnet"]):
            with pytest.raises(ClientError) as caught:
                ec2.delete_subnet(SubnetId=subnet_id)
            assert _code(caught) == "DependencyViolation"
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        simulator.teardown(MEMBER)
        left = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]}])
        assert left["NetworkInterfaces"] == []
        ec2.delete_subnet(SubnetId=vpc["subnet"])
        ec2.delete_subnet(SubnetId=vpc["other_subnet"])
    finally:
        vendor.stop()


def test_delete_vpc_with_the_eks_cluster_security_group_is_dependency_violation(ec2: Any) -> None:
    """DeleteVpc (EC2 API reference): "you must ... delete all security groups associated with the VPC (except the
    default one)" before deleting it; EKS creates its cluster security group `eks-cluster-sg-<cluster>-<id>` in the
    cluster's VPC (EKS user guide, "View Amazon EKS security group requirements for clusters"). moto deleted the
    VPC with the group in it."""
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/24")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(
        GroupName=f"eks-cluster-sg-aac-{MEMBER}-0123456789", Description=vendor.CLUSTER_SG_DESCRIPTION, VpcId=vpc_id
    )["GroupId"]
    with pytest.raises(ClientError) as caught:
        ec2.delete_vpc(VpcId=vpc_id)
    assert _code(caught) == "DependencyViolation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert vpc_id in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    ec2.delete_security_group(GroupId=group_id)
    ec2.delete_vpc(VpcId=vpc_id)  # its default group goes with it, as in AWS
    assert vpc_id not in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}


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


# -- issue 12 round 2: failing NAT gateways, endpoint client tokens, transit gateway attachments ---------------------
def test_public_nat_gateway_without_attached_internet_gateway_fails_and_keeps_its_token(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    """EC2 API reference, NatGateway (botocore ec2 service-2.json): State `failed` "The NAT gateway could not be
    created. Check the failureCode and failureMessage fields"; FailureCode `Gateway.NotAttached`, FailureMessage
    "Network vpc-xxxxxxxx has no Internet gateway attached". A client token names one gateway, failed or not
    (EC2 idempotency guide). moto makes it `available`."""
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    nat = _nat(ec2, vpc, token="no-igw")
    assert nat["State"] == "pending"
    sandbox.advance(60)
    (failed,) = ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"]
    assert failed["State"] == "failed"
    assert failed["FailureCode"] == "Gateway.NotAttached"
    assert failed["FailureMessage"] == f"Network {vpc['vpc']} has no Internet gateway attached"
    assert _nat(ec2, vpc, token="no-igw")["NatGatewayId"] == nat["NatGatewayId"]  # the token keeps the failed one
    # a failed gateway holds neither its Elastic IP nor an interface in the subnet
    ec2.release_address(AllocationId=vpc["eip"])
    ec2.delete_subnet(SubnetId=vpc["subnet"])


def test_create_vpc_endpoint_honours_client_token(ec2: Any, vpc: dict[str, str]) -> None:
    """EC2 API reference, CreateVpcEndpoint: ClientToken "Unique, case-sensitive identifier that you provide to
    ensure the idempotency of the request"; the idempotency guide: the same token with other parameters is
    `IdempotentParameterMismatch`. moto makes a second endpoint."""
    table = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    other = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    args = {"VpcEndpointType": "Gateway", "VpcId": vpc["vpc"], "ServiceName": "com.amazonaws.eu-west-1.s3"}
    first = ec2.create_vpc_endpoint(**args, RouteTableIds=[table], ClientToken="vpce-1")
    again = ec2.create_vpc_endpoint(**args, RouteTableIds=[table], ClientToken="vpce-1")
    assert again["VpcEndpoint"]["VpcEndpointId"] == first["VpcEndpoint"]["VpcEndpointId"]
    assert again["ClientToken"] == "vpce-1"
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1
    with pytest.raises(ClientError) as caught:
        ec2.create_vpc_endpoint(**args, RouteTableIds=[other], ClientToken="vpce-1")
    assert _code(caught) == "IdempotentParameterMismatch"
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1


def _attach(ec2: Any, tgw: str, vpc: dict[str, str], **extra: Any) -> dict[str, Any]:
    return dict(
        ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=tgw, VpcId=vpc["vpc"], SubnetIds=[vpc["subnet"], vpc["other_subnet"]], **extra
        )["TransitGatewayVpcAttachment"]
    )


def _attachment_state(ec2: Any, attachment_id: str) -> str:
    answer = ec2.describe_transit_gateway_vpc_attachments(TransitGatewayAttachmentIds=[attachment_id])
    return str(answer["TransitGatewayVpcAttachments"][0]["State"])


def test_shared_attachment_is_pending_acceptance_unless_the_transit_gateway_auto_accepts(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    """EC2 API reference, TransitGatewayRequestOptions.AutoAcceptSharedAttachments: "Enable or disable automatic
    acceptance of attachment requests. Disabled by default."; AcceptTransitGatewayVpcAttachment: "The VPC
    attachment must be in the pendingAcceptance state" (Transit Gateway guide, "Transit gateway sharing": the
    owner accepts attachment requests from other accounts unless auto accept is on). moto: `available`."""
    tgw = shared_transit_gateway("111111111111", auto_accept=False)
    attachment = _attach(ec2, tgw, vpc)
    assert attachment["State"] == "pendingAcceptance"
    sandbox.advance(3600)
    assert _attachment_state(ec2, attachment["TransitGatewayAttachmentId"]) == "pendingAcceptance"


def test_auto_accepted_attachment_is_pending_then_available(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    """EC2 API reference, TransitGatewayAttachmentState (botocore ec2 service-2.json): `pending` precedes
    `available`; with AutoAcceptSharedAttachments=enable the owner's acceptance is not waited for."""
    tgw = shared_transit_gateway("111111111111", auto_accept=True)
    attachment = _attach(ec2, tgw, vpc)
    assert attachment["State"] == "pending"
    sandbox.advance(60)
    assert _attachment_state(ec2, attachment["TransitGatewayAttachmentId"]) == "available"


def test_attachment_tags_are_kept_and_its_filters_honoured(ec2: Any, vpc: dict[str, str]) -> None:
    """EC2 API reference, CreateTransitGatewayVpcAttachment TagSpecifications and
    DescribeTransitGatewayVpcAttachments Filters (state, transit-gateway-attachment-id, transit-gateway-id,
    vpc-id; tag:<key> as on every EC2 describe). moto drops the tags (it reads them for another resource type)
    and answers every filter with every attachment."""
    tgw = shared_transit_gateway("111111111111")
    tags = [{"Key": "mlplane:key", "Value": "tgw-attachment"}, {"Key": "mlplane:managed", "Value": "true"}]
    mine = _attach(ec2, tgw, vpc, TagSpecifications=[{"ResourceType": "transit-gateway-attachment", "Tags": tags}])
    assert sorted(mine["Tags"], key=lambda t: t["Key"]) == tags
    other_vpc = ec2.create_vpc(CidrBlock="10.20.0.0/24")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.20.0.0/28", AvailabilityZone="eu-west-1a")
    ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=tgw, VpcId=other_vpc, SubnetIds=[other_subnet["Subnet"]["SubnetId"]]
    )

    def ids(*filters: dict[str, Any]) -> list[str]:
        found = ec2.describe_transit_gateway_vpc_attachments(Filters=list(filters))["TransitGatewayVpcAttachments"]
        return [a["TransitGatewayAttachmentId"] for a in found]

    assert ids({"Name": "tag:mlplane:managed", "Values": ["true"]}) == [mine["TransitGatewayAttachmentId"]]
    assert ids({"Name": "tag:mlplane:key", "Values": ["other"]}) == []
    assert ids({"Name": "vpc-id", "Values": [vpc["vpc"]]}) == [mine["TransitGatewayAttachmentId"]]
    assert len(ids({"Name": "transit-gateway-id", "Values": [tgw]})) == 2


def test_attachment_with_two_subnets_in_one_availability_zone_is_refused(ec2: Any, vpc: dict[str, str]) -> None:
    """EC2 API reference, CreateTransitGatewayVpcAttachment SubnetIds: "You can specify only one subnet per
    Availability Zone"; AWS answers `DuplicateSubnetsInSameZone: Duplicate Subnets for same AZ` (HTTP 400, as
    reported in zoitech/terraform-aws-network#46). moto attaches both."""
    tgw = shared_transit_gateway("111111111111")
    same_az = ec2.create_subnet(VpcId=vpc["vpc"], CidrBlock="10.10.0.192/27", AvailabilityZone="eu-west-1a")
    with pytest.raises(ClientError) as caught:
        ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=tgw, VpcId=vpc["vpc"], SubnetIds=[vpc["subnet"], same_az["Subnet"]["SubnetId"]]
        )
    assert _code(caught) == "DuplicateSubnetsInSameZone"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"] == []


def test_deleted_attachment_stays_described_and_deleting_it_again_is_not_found(
    ec2: Any, vpc: dict[str, str], sandbox: VirtualClock
) -> None:
    """AWS keeps a deleted attachment visible as `deleted` (TransitGatewayAttachmentState; terraform-provider-aws
    #10393 and #49784: "EC2 can retain deleted Transit Gateway attachments"), and DeleteTransitGatewayVpcAttachment
    of it answers `InvalidTransitGatewayAttachmentID.NotFound: Transit Gateway VPC Attachment tgw-attach-… was
    deleted or does not exist.` (rebuy-de/aws-nuke#961). moto forgets it at once and a second delete is a
    KeyError (HTTP 500)."""
    tgw = shared_transit_gateway("111111111111")
    attachment_id = _attach(ec2, tgw, vpc)["TransitGatewayAttachmentId"]
    sandbox.advance(60)
    deleting = ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    assert deleting["TransitGatewayVpcAttachment"]["State"] == "deleting"
    sandbox.advance(60)
    assert _attachment_state(ec2, attachment_id) == "deleted"
    with pytest.raises(ClientError) as caught:
        ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    assert _code(caught) == "InvalidTransitGatewayAttachmentID.NotFound"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # a deleted attachment is no duplicate: the VPC can be attached again
    _attach(ec2, tgw, vpc)


def _member_ec2(session_policy: dict[str, Any], session_name: str) -> Any:
    session = aws.session_for(
        "111111111111",
        "AWSControlTowerExecution",
        region=REGION,
        session_name=session_name,
        session_policy=json.dumps(session_policy),
    )
    return session.client("ec2", region_name=REGION)


def _role_names(member: Member) -> set[str]:
    return {r["RoleName"] for r in member.client("iam").list_roles(PathPrefix="/aws-service-role/")["Roles"]}


def test_first_attachment_needs_create_service_linked_role_for_transitgateway(
    member: Member, vpc: dict[str, str]
) -> None:
    """Transit Gateway guide, "Use service-linked roles for transit gateways": Amazon VPC creates
    AWSServiceRoleForVPCTransitGateway "when you attach a VPC in your account to a transit gateway", and "you
    must configure permissions to allow an IAM entity ... to create" it (iam:CreateServiceLinkedRole, condition
    key iam:AWSServiceName); without it CreateTransitGatewayVpcAttachment is `UnauthorizedOperation` (HTTP 403,
    openshift/aws-account-operator#531). moto creates no role and checks nothing."""
    tgw = shared_transit_gateway("111111111111")
    policy = json.loads(session_policy(Settings()))
    quotas_only = {
        **policy,
        "Statement": [
            s
            if s.get("Action") != "iam:CreateServiceLinkedRole"
            else {**s, "Condition": {"StringEquals": {"iam:AWSServiceName": "servicequotas.amazonaws.com"}}}
            for s in policy["Statement"]
        ],
    }
    refused = _member_ec2(quotas_only, "no-slr")
    with pytest.raises(ClientError) as caught:
        _attach(refused, tgw, vpc)
    assert _code(caught) == "UnauthorizedOperation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "iam:CreateServiceLinkedRole" in caught.value.response["Error"]["Message"]
    assert fidelity.TGW_SERVICE_LINKED_ROLE not in _role_names(member)
    _attach(_member_ec2(policy, "with-slr"), tgw, vpc)  # mlplane's own session policy allows it
    assert fidelity.TGW_SERVICE_LINKED_ROLE in _role_names(member)
