"""An account prepared by hand as seed 000 describes (`mlplane local run --hand-built`, `mlplane adopt --local`).

Made as the member account's own admin, outside mlplane (its calls are not recorded), before the first input:
the `aac_vpc` with the secondary CIDR, the 12 tagged subnets, a route table per subnet with the seed's routes,
the internet gateway, a NAT gateway per AZ with its Elastic IP, the S3 gateway endpoint, the service account
with the AAC_MachineLearning policy attached and tagged, and the vault key with its alias. Nothing carries
mlplane's tags. `differences` are named departures from the seed, so that adopt has something to report.
"""

from __future__ import annotations

import json
from typing import Any

from mlplane.config import Settings
from mlplane.iam import plan as iam_plan
from mlplane.iam import policy as iam_policy
from mlplane.kms import policy as key_policy
from mlplane.network.models import DEFAULT_ROUTE
from mlplane.network.plan import plan_network
from mlplane_sandbox.world import as_account, sandbox_client

DIFFERENCES = ("missing-route", "untagged-subnet", "dns-off")
"""`missing-route`: no 0.0.0.0/0 in eks_node a's table (adopt creates it); `untagged-subnet`: eks_node a without
its AACSubnet tag (reported); `dns-off`: DNS hostnames off in the VPC (reported)."""


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def build(account_id: str, settings: Settings, differences: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Build the account by hand; the ids made (by plan key), for tests to check they are still there."""
    unknown = [d for d in differences if d not in DIFFERENCES]
    if unknown:
        raise KeyError(f"unknown difference {unknown[0]!r}: expected one of {', '.join(DIFFERENCES)}")
    with as_account(account_id):
        return _build(account_id, settings, set(differences))


def _build(account_id: str, settings: Settings, differences: set[str]) -> dict[str, Any]:
    ec2 = sandbox_client("ec2")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    plan = plan_network(settings, sorted(z["ZoneName"] for z in zones))
    ids: dict[str, str] = {}
    vpc = plan.vpc
    vpc_id = ec2.create_vpc(CidrBlock=vpc.cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(vpc.tags)}])[
        "Vpc"
    ]["VpcId"]
    ids[vpc.key] = vpc_id
    ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=vpc.secondary_cidr)
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": "dns-off" not in differences})
    for subnet in plan.subnets:
        tags = dict(subnet.tags)
        if "untagged-subnet" in differences and subnet.key == "subnet/eks_node/a":
            tags.pop("AACSubnet", None)
        ids[subnet.key] = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=subnet.cidr,
            AvailabilityZone=subnet.az,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags(tags)}],
        )["Subnet"]["SubnetId"]
    for table in plan.route_tables:
        ids[table.key] = ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=[{"ResourceType": "route-table", "Tags": _tags(table.tags)}]
        )["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=ids[table.key], SubnetId=ids[table.subnet_key])
    igw = plan.internet_gateway
    assert igw is not None  # nat mode, seed 000's egress
    ids[igw.key] = ec2.create_internet_gateway(
        TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": _tags(igw.tags)}]
    )["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=ids[igw.key], VpcId=vpc_id)
    endpoint = plan.endpoint
    ids[endpoint.key] = ec2.create_vpc_endpoint(
        VpcEndpointType="Gateway",
        VpcId=vpc_id,
        ServiceName=endpoint.service_name,
        RouteTableIds=[ids[k] for k in endpoint.route_table_keys],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": _tags(endpoint.tags)}],
    )["VpcEndpoint"]["VpcEndpointId"]
    for nat in plan.nat_gateways:
        ids[nat.eip_key] = ec2.allocate_address(
            Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tags(nat.eip_tags)}]
        )["AllocationId"]
        ids[nat.key] = ec2.create_nat_gateway(
            SubnetId=ids[nat.subnet_key],
            AllocationId=ids[nat.eip_key],
            TagSpecifications=[{"ResourceType": "natgateway", "Tags": _tags(nat.tags)}],
        )["NatGateway"]["NatGatewayId"]
    ec2.get_waiter("nat_gateway_available").wait(
        NatGatewayIds=[ids[n.key] for n in plan.nat_gateways], WaiterConfig={"Delay": 15, "MaxAttempts": 80}
    )
    for table in plan.route_tables:
        for route in table.routes:
            if route.key is None:
                continue
            if "missing-route" in differences and table.key == "rtb/eks_node/a" and route.destination == DEFAULT_ROUTE:
                continue
            target = {"nat": "NatGatewayId", "igw": "GatewayId"}[route.target]
            ec2.create_route(
                RouteTableId=ids[table.key], DestinationCidrBlock=route.destination, **{target: ids[route.target_key]}
            )
    ids.update(_iam_and_key(account_id, settings))
    return ids


def _iam_and_key(account_id: str, settings: Settings) -> dict[str, str]:
    iam = sandbox_client("iam")
    iam.create_user(UserName=settings.sa_user_name)
    arn = iam.create_policy(
        PolicyName=settings.sa_policy_name,
        PolicyDocument=json.dumps(iam_policy.shipped_policy()),
        Tags=[{"Key": iam_plan.AAC_RESOURCE_TAG, "Value": iam_plan.AAC_RESOURCE_VALUE}],
    )["Policy"]["Arn"]
    iam.attach_user_policy(UserName=settings.sa_user_name, PolicyArn=arn)
    kms = sandbox_client("kms")
    key_id = kms.create_key(
        Policy=key_policy.policy_text(key_policy.default_key_policy(account_id, "aws")),
        Description="AAC secure vault key, made by hand",
    )["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id)
    kms.create_alias(AliasName=settings.vault_key_alias, TargetKeyId=key_id)
    return {"iam/user": settings.sa_user_name, "iam/policy": arn, "kms/key": key_id}
