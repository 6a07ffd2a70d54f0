"""The vendor's footprint in a member account: what AAC has there that mlplane's resources carry (REQUIREMENTS C7).

Once the AAC admin has triggered the data plane, EKS puts its cluster's network interfaces (description
`Amazon EKS <cluster>`) and its cluster security group (`eks-cluster-sg-<cluster>-<id>`) into mlplane's
`eks_control` subnets and VPC, the node groups' instances put theirs into the `eks_node` subnets, and AAC
creates `credential-service-role`, which the vault key's policy names. Removing mlplane's network, IAM service
account or key under any of that breaks the data plane and AAC's own deprovisioning (seed 000), and in AWS
the rollback would stop half way at the first subnet anyway (DependencyViolation). So before it removes
anything, rollback asks this module; read-only, like everything mlplane does with the vendor's resources.

The footprint is:
- a vendor EKS cluster (name starts with `eks_cluster_prefix`) in any state, and its node groups;
- any network interface in mlplane's VPC that is not mlplane's (its own NAT gateways' and transit gateway
  attachments' interfaces, or one with mlplane's tags, are mlplane's; so are the interfaces of NAT gateways
  made by hand that the ledger holds as adopted, D3: they are the account's, never the vendor's);
- any security group in mlplane's VPC but the VPC's default one and mlplane's own;
- the vendor's `credential-service-role`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from mlplane.eks import watch
from mlplane.errors import translate
from mlplane.ledger import ResourceState
from mlplane.network import lookup

if TYPE_CHECKING:
    from mlplane.config import Settings
    from mlplane.member import Member

_DEFAULT_GROUP = "default"  # the security group AWS makes with every VPC (removed with it)


class VendorResource(BaseModel):
    """One thing of the vendor's that holds a rollback, as the notification names it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: str  # eks:cluster, eks:nodegroup, ec2:network-interface, ec2:security-group, iam:role
    id: str
    detail: str = ""

    def text(self) -> str:
        return f"{self.type} {self.id}" + (f" ({self.detail})" if self.detail else "")


def summary(footprint: list[VendorResource], limit: int = 600) -> str:
    """The footprint in one line an operator reads in `mlplane status`: ids grouped by type, in footprint order,
    at most about `limit` characters (the notification carries the whole list with details); a node group's or
    cluster's state is kept, an interface's description is not."""
    groups: dict[str, list[str]] = {}
    for resource in footprint:
        shown = resource.text() if resource.type.startswith("eks:") else resource.id
        groups.setdefault(resource.type, []).append(shown)
    parts: list[str] = []
    used = 0
    left = len(footprint)
    for kind, ids in groups.items():
        taken: list[str] = []
        for shown in ids:
            if used + len(shown) > limit:
                break
            taken.append(shown.removeprefix(f"{kind} "))
            used += len(shown) + 2
        left -= len(taken)
        if taken:
            parts.append(f"{kind} " + ", ".join(taken))
    return "; ".join(parts) + (f"; and {left} more (the ROLLBACK_HELD notification lists them)" if left else "")


def vendor_footprint(member: Member, settings: Settings) -> list[VendorResource]:
    """Everything of the vendor's in the account that mlplane's resources carry; empty if it never started."""
    found: list[VendorResource] = []
    for cluster in watch.observe(member, settings.eks_cluster_prefix):
        found.append(VendorResource(type="eks:cluster", id=cluster.name, detail=cluster.status))
        found += [
            VendorResource(type="eks:nodegroup", id=f"{cluster.name}/{group.name}", detail=group.status)
            for group in cluster.nodegroups
        ]
    for vpc_id in _mlplane_vpcs(member):
        found += _foreign_interfaces(member, vpc_id)
        found += _foreign_security_groups(member, vpc_id)
    role = settings.credential_role_name
    if watch.role_exists(member, role):
        found.append(VendorResource(type="iam:role", id=role, detail="the vault key's policy names it"))
    return found


def _pages(member: Member, operation: str, result_key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    try:
        for page in lookup.ec2(member).get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
    except ClientError as err:
        raise translate(err, f"ec2:{operation} in {member.account_id}") from err
    return items


def _in_vpc(vpc_id: str) -> list[dict[str, Any]]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


def _mlplane_vpcs(member: Member) -> list[str]:
    """mlplane's VPCs in the account: the ledger's, and any carrying mlplane's tags (a crash before the record)."""
    recorded = {
        r.resource_id for r in member.ledger.resources(member.account_id) if r.type == "ec2:vpc" and r.resource_id
    }
    tagged = _pages(member, "describe_vpcs", "Vpcs", Filters=lookup.tag_filters(member, "")[1:])
    return sorted(recorded | {str(v["VpcId"]) for v in tagged if lookup.owned(member, v)})


def _adopted_ids(member: Member) -> set[str]:
    """The ids of the resources made by hand that the ledger holds as adopted (D3), or released (a retried
    Rollback task looks again after the walk let some go: they are still the account's, not the vendor's)."""
    return {
        r.resource_id
        for r in member.ledger.resources(member.account_id, live_only=False)
        if r.state in (ResourceState.ADOPTED, ResourceState.RELEASED) and r.resource_id
    }


def _own_interface_ids(member: Member, vpc_id: str) -> tuple[set[str], set[str]]:
    """The interfaces of mlplane's NAT gateways, and the ids of its NAT gateways and attachments (whose
    interfaces EC2 describes as `Interface for NAT Gateway nat-…` / `… Transit Gateway Attachment tgw-attach-…`)."""
    eni_ids: set[str] = set()
    owners: set[str] = set()
    adopted = _adopted_ids(member)
    for nat in _pages(member, "describe_nat_gateways", "NatGateways", Filters=_in_vpc(vpc_id)):
        if lookup.owned(member, nat) or str(nat["NatGatewayId"]) in adopted:
            owners.add(str(nat["NatGatewayId"]))
            eni_ids |= {
                str(a["NetworkInterfaceId"]) for a in nat.get("NatGatewayAddresses", []) if a.get("NetworkInterfaceId")
            }
    attachments = _pages(
        member, "describe_transit_gateway_vpc_attachments", "TransitGatewayVpcAttachments", Filters=_in_vpc(vpc_id)
    )
    owners |= {str(a["TransitGatewayAttachmentId"]) for a in attachments if lookup.owned(member, a)}
    return eni_ids, owners


def _foreign_interfaces(member: Member, vpc_id: str) -> list[VendorResource]:
    own_enis, owners = _own_interface_ids(member, vpc_id)
    found: list[VendorResource] = []
    for eni in _pages(member, "describe_network_interfaces", "NetworkInterfaces", Filters=_in_vpc(vpc_id)):
        eni_id = str(eni["NetworkInterfaceId"])
        description = str(eni.get("Description") or "")
        if eni_id in own_enis or lookup.owned(member, eni) or any(o in description.split() for o in owners):
            continue
        subnet = str(eni.get("SubnetId", "?"))
        found.append(
            VendorResource(
                type="ec2:network-interface",
                id=eni_id,
                detail=f"{description or eni.get('InterfaceType', 'interface')} in {subnet}",
            )
        )
    return sorted(found, key=lambda r: r.id)


def _foreign_security_groups(member: Member, vpc_id: str) -> list[VendorResource]:
    groups = _pages(member, "describe_security_groups", "SecurityGroups", Filters=_in_vpc(vpc_id))
    return sorted(
        (
            VendorResource(type="ec2:security-group", id=str(g["GroupId"]), detail=str(g.get("GroupName", "")))
            for g in groups
            if g.get("GroupName") != _DEFAULT_GROUP and not lookup.owned(member, g)
        ),
        key=lambda r: r.id,
    )
