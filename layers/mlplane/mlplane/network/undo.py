"""How each network resource mlplane created is found again and removed (rollback and deprovision).

Listed in `HANDLERS` (joined by `mlplane.rollback.registry`). Rules every handler keeps:
- it deletes only what still carries `mlplane:managed=true` and `mlplane:account=<this account>` (for things
  without tags of their own, such as routes, associations and CIDR associations: their route table or VPC);
  anything else is left alone and reported "gone";
- "no such resource" is success ("gone"); for a record of the running execution, only once EC2's eventual
  consistency window has passed (`rollback.run.undo_all` runs its undo in `mlplane.consistency.settling`);
- a `DependencyViolation` caused by something mlplane does not own raises `Blocked` naming it.

Rollback walks the ledger newest first; `apply` records resources so that this gives a valid order: routes,
route-table associations, the transit gateway attachment, NAT gateways (waiting until `deleted`), Elastic
IPs, the S3 endpoint, the internet gateway (detach, delete), subnets, route tables, the secondary CIDR, the
VPC, and last the pool allocation.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError

from mlplane.deadline import bounded_wait
from mlplane.errors import Blocked, TimedOut, error_code, translate
from mlplane.ledger import ResourceRecord, ResourceState
from mlplane.member import ACCOUNT_TAG, ADOPT, ADOPTED, EXECUTION_TAG, KEY_TAG, MANAGED_TAG
from mlplane.network import (
    ASSOCIATION,
    CIDR_ALLOCATION,
    EIP,
    IGW,
    NAT,
    ROUTE,
    ROUTE_TABLE,
    SUBNET,
    TGW_ATTACHMENT,
    VPC,
    VPC_CIDR,
    VPCE,
    allocation,
    lookup,
)
from mlplane.rollback.handler import FindFn, Handler, UndoFn, Undone

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlplane.ledger import Ledger
    from mlplane.member import Member

# A NAT gateway can take about 10 minutes to delete; the Lambda's deadline, not this, bounds one invocation
# (mlplane.deadline): a longer wait resumes in the retried step.
NAT_DELETE_WAIT = {"Delay": 15, "MaxAttempts": 80}
_NOT_OURS = "not tagged as mlplane's for this account: left alone"


def _gone(reason: str = "") -> Undone:
    return Undone("gone", reason)


def _removed() -> Undone:
    return Undone("removed")


def _what(member: Member, operation: str) -> str:
    return f"ec2:{operation} in {member.account_id}"


def _attempt(
    member: Member,
    operation: str,
    blocked: Callable[[], str] | None = None,
    *,
    purpose: str | None = None,
    **kwargs: Any,
) -> bool:
    """Make a delete call: True if done, False if already gone; DependencyViolation -> Blocked(blockers).
    `purpose`: the session to make it in (`lookup.purpose_for`), else the member's own."""
    try:
        getattr(lookup.ec2(member, purpose), operation)(**kwargs)
    except ClientError as err:
        if lookup.is_not_found(err):
            return False
        if error_code(err) == "DependencyViolation" and blocked is not None:
            raise Blocked(blocked()) from err
        raise translate(err, _what(member, operation)) from err
    return True


# -- route, association (their route table carries the tags) ---------------------------------------------
def _owned_table(member: Member, route_table_id: str) -> dict[str, Any] | None:
    tables = lookup.describe_or_none(member, "describe_route_tables", "RouteTables", RouteTableIds=[route_table_id])
    if not tables or not lookup.tracked(member, tables[0]):  # mlplane's, or adopted: its routes mlplane added go
        return None
    return tables[0]


def undo_route(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    table_id, destination = record.data["route_table_id"], record.data["destination"]
    table = _owned_table(member, table_id)
    if table is None:
        return _gone(f"route table {table_id} gone or {_NOT_OURS}")
    if lookup.current_route(member, table_id, destination) is None:
        return _gone()
    done = _attempt(
        member,
        "delete_route",
        purpose=lookup.purpose_for(member, table),
        RouteTableId=table_id,
        DestinationCidrBlock=destination,
    )
    return _removed() if done else _gone()


def undo_association(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    table = _owned_table(member, record.data["route_table_id"])
    if table is None:
        return _gone(f"route table {record.data['route_table_id']} gone or {_NOT_OURS}")
    if not any(a.get("RouteTableAssociationId") == resource_id for a in table.get("Associations", [])):
        return _gone()
    done = _attempt(
        member, "disassociate_route_table", purpose=lookup.purpose_for(member, table), AssociationId=resource_id
    )
    return _removed() if done else _gone()


# -- NAT gateway, Elastic IP ---------------------------------------------------------------------------------
def undo_nat(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    nats = lookup.describe_or_none(member, "describe_nat_gateways", "NatGateways", NatGatewayIds=[resource_id])
    if not nats or nats[0].get("State") in ("deleted", "failed"):
        return _gone()
    if not lookup.owned(member, nats[0]):
        return _gone(_NOT_OURS)
    if nats[0].get("State") != "deleting" and not _attempt(member, "delete_nat_gateway", NatGatewayId=resource_id):
        return _gone()
    _wait_nat_deleted(member, resource_id)
    return _removed()


def _wait_nat_deleted(member: Member, nat_id: str) -> None:
    # Its Elastic IP stays associated and its ENI stays in the subnet until the gateway is `deleted`; a wait
    # the Lambda's deadline cuts short is TransientError, and the retried step waits on (it is `deleting`).
    try:
        bounded_wait(
            lookup.ec2(member).get_waiter("nat_gateway_deleted"),
            member.deadline,
            f"NAT gateway {nat_id} in {member.account_id} deleting",
            delay=NAT_DELETE_WAIT["Delay"],
            max_attempts=NAT_DELETE_WAIT["MaxAttempts"],
            NatGatewayIds=[nat_id],
        )
    except WaiterError as err:
        raise TimedOut(f"NAT gateway {nat_id} in {member.account_id} not deleted: {err}") from err


def undo_eip(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    addresses = lookup.describe_or_none(member, "describe_addresses", "Addresses", AllocationIds=[resource_id])
    if not addresses:
        return _gone()
    if not lookup.owned(member, addresses[0]):
        return _gone(_NOT_OURS)
    address = addresses[0]
    try:
        lookup.ec2(member).release_address(AllocationId=resource_id)
    except ClientError as err:
        if lookup.is_not_found(err):
            return _gone()
        if error_code(err) in ("InvalidIPAddress.InUse", "DependencyViolation"):
            user = address.get("NetworkInterfaceId") or address.get("AssociationId") or "an association"
            raise Blocked(f"Elastic IP {resource_id} in {member.account_id} is in use by {user}") from err
        raise translate(err, _what(member, "ReleaseAddress")) from err
    return _removed()


# -- endpoint, internet gateway, transit gateway attachment -------------------------------------------------
def undo_vpce(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    endpoints = lookup.describe_or_none(member, "describe_vpc_endpoints", "VpcEndpoints", VpcEndpointIds=[resource_id])
    if not endpoints or str(endpoints[0].get("State", "")).lower() in ("deleted", "deleting"):
        return _gone()
    if not lookup.owned(member, endpoints[0]):
        return _gone(_NOT_OURS)
    answer = lookup.call(member, "delete_vpc_endpoints", VpcEndpointIds=[resource_id])
    for failure in answer.get("Unsuccessful", []):
        code = failure.get("Error", {}).get("Code", "")
        if "NotFound" not in code:
            raise translate(
                ClientError({"Error": failure.get("Error", {})}, "DeleteVpcEndpoints"),
                _what(member, "DeleteVpcEndpoints"),
            )
    return _removed()


def undo_igw(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    igws = lookup.describe_or_none(
        member, "describe_internet_gateways", "InternetGateways", InternetGatewayIds=[resource_id]
    )
    if not igws:
        return _gone()
    if not lookup.owned(member, igws[0]):
        return _gone(_NOT_OURS)
    for attachment in igws[0].get("Attachments", []):
        vpc_id = attachment["VpcId"]
        _attempt(
            member,
            "detach_internet_gateway",
            blocked=functools.partial(_mapped_addresses, member, resource_id, vpc_id),
            InternetGatewayId=resource_id,
            VpcId=vpc_id,
        )
    done = _attempt(
        member,
        "delete_internet_gateway",
        blocked=lambda: f"internet gateway {resource_id} in {member.account_id} is still attached",
        InternetGatewayId=resource_id,
    )
    return _removed() if done else _gone()


def _mapped_addresses(member: Member, igw_id: str, vpc_id: str) -> str:
    enis = _enis(member, "vpc-id", vpc_id)
    eni_ids = {e["NetworkInterfaceId"] for e in enis}
    addresses = lookup.call(member, "describe_addresses")["Addresses"]
    mapped = sorted(
        f"{a.get('PublicIp', '?')} ({a.get('AllocationId', '?')} on {a.get('NetworkInterfaceId')})"
        for a in addresses
        if a.get("NetworkInterfaceId") in eni_ids
    )
    return f"internet gateway {igw_id} in {member.account_id} cannot leave {vpc_id}: mapped public addresses " + (
        ", ".join(mapped) or "(unknown)"
    )


def undo_tgw_attachment(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    attachment = lookup.tgw_attachment_owned(member, resource_id)
    if attachment is None or attachment.get("State") in lookup.DEAD_TGW_ATTACHMENT_STATES:
        return _gone()
    done = _attempt(member, "delete_transit_gateway_vpc_attachment", TransitGatewayAttachmentId=resource_id)
    # Its network interfaces leave the eks_control subnets only once it is `deleted`.
    try:
        bounded_wait(
            lookup.tgw_attachment_waiter(member, "TransitGatewayAttachmentDeleted"),
            member.deadline,
            f"transit gateway attachment {resource_id} in {member.account_id} deleting",
            delay=lookup.TGW_WAIT["Delay"],
            max_attempts=lookup.TGW_WAIT["MaxAttempts"],
            TransitGatewayAttachmentIds=[resource_id],
        )
    except WaiterError as err:
        raise TimedOut(f"transit gateway attachment {resource_id} in {member.account_id} not deleted: {err}") from err
    return _removed() if done else _gone()


# -- subnet, route table, secondary CIDR, VPC -------------------------------------------------------------------
def undo_subnet(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    subnets = lookup.describe_or_none(member, "describe_subnets", "Subnets", SubnetIds=[resource_id])
    if not subnets:
        return _gone()
    if not lookup.owned(member, subnets[0]):
        return _gone(_NOT_OURS)
    _clear_own_interfaces(member, resource_id)
    done = _attempt(
        member,
        "delete_subnet",
        blocked=lambda: (
            f"subnet {resource_id} in {member.account_id} is in use by "
            + _describe_enis(_enis(member, "subnet-id", resource_id))
        ),
        SubnetId=resource_id,
    )
    return _removed() if done else _gone()


def _clear_own_interfaces(member: Member, subnet_id: str) -> None:
    """Remove mlplane's own NAT gateways and transit gateway attachments whose interfaces sit in the subnet.

    Normally their ledger records were undone already; these are ones a create racing the rollback left
    unrecorded. Only resources with mlplane's tags for this account are touched.
    """
    blank = _sweep_record(member)
    mine = lookup.tag_filters(member, "")[1:]
    nats = lookup.call(member, "describe_nat_gateways", Filters=[{"Name": "subnet-id", "Values": [subnet_id]}, *mine])[
        "NatGateways"
    ]
    for nat in nats:
        if nat.get("SubnetId") == subnet_id and lookup.owned(member, nat):
            undo_nat(member, blank, str(nat["NatGatewayId"]))
    attachments = lookup.call(member, "describe_transit_gateway_vpc_attachments", Filters=mine)
    for attachment in attachments["TransitGatewayVpcAttachments"]:
        if subnet_id in attachment.get("SubnetIds", []):
            undo_tgw_attachment(member, blank, str(attachment["TransitGatewayAttachmentId"]))


def undo_route_table(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    tables = lookup.describe_or_none(member, "describe_route_tables", "RouteTables", RouteTableIds=[resource_id])
    if not tables:
        return _gone()
    if not lookup.owned(member, tables[0]):
        return _gone(_NOT_OURS)
    subnets = sorted(str(a.get("SubnetId")) for a in tables[0].get("Associations", []) if a.get("SubnetId"))
    done = _attempt(
        member,
        "delete_route_table",
        blocked=lambda: (
            f"route table {resource_id} in {member.account_id} is associated with "
            + (", ".join(subnets) or "(unknown)")
        ),
        RouteTableId=resource_id,
    )
    return _removed() if done else _gone()


def _owned_vpc(member: Member, vpc_id: str) -> dict[str, Any] | None:
    vpcs = lookup.describe_or_none(member, "describe_vpcs", "Vpcs", VpcIds=[vpc_id])
    if not vpcs or not lookup.owned(member, vpcs[0]):
        return None
    return vpcs[0]


def undo_vpc_cidr(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    vpc = _owned_vpc(member, record.data["vpc_id"])
    if vpc is None:
        return _gone(f"VPC {record.data['vpc_id']} gone or {_NOT_OURS}")
    live = [
        a
        for a in vpc.get("CidrBlockAssociationSet", [])
        if a.get("AssociationId") == resource_id
        and a.get("CidrBlockState", {}).get("State") in ("associating", "associated")
    ]
    if not live:
        return _gone()
    cidr = str(live[0].get("CidrBlock"))
    users = _subnets_in(member, record.data["vpc_id"], cidr)
    if users and all(lookup.owned(member, s) for s in users):
        # mlplane subnets the ledger does not list (a create that raced the rollback): the VPC's sweep removes them
        return Undone("deferred", f"CIDR {cidr} still holds mlplane subnets: removed with VPC {record.data['vpc_id']}")
    done = _attempt(
        member,
        "disassociate_vpc_cidr_block",
        blocked=lambda: (
            f"CIDR {cidr} of {record.data['vpc_id']} in {member.account_id} is in use by "
            + _describe_subnets(member, record.data["vpc_id"], cidr)
        ),
        AssociationId=resource_id,
    )
    return _removed() if done else _gone()


def undo_vpc(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    if lookup.describe_or_none(member, "describe_vpcs", "Vpcs", VpcIds=[resource_id]) is None:
        return _gone()
    vpc = _owned_vpc(member, resource_id)
    if vpc is None:
        return _gone(_NOT_OURS)
    sweep_vpc(member, vpc)
    done = _attempt(
        member,
        "delete_vpc",
        blocked=lambda: (
            f"VPC {resource_id} in {member.account_id} is in use by " + _vpc_dependents(member, resource_id)
        ),
        VpcId=resource_id,
    )
    return _removed() if done else _gone()


def _vpc_dependents(member: Member, vpc_id: str) -> str:
    parts = [_describe_subnets(member, vpc_id, None)]
    enis = _enis(member, "vpc-id", vpc_id)
    if enis:
        parts.append(_describe_enis(enis))
    igws = lookup.call(
        member, "describe_internet_gateways", Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    )["InternetGateways"]
    parts += [g["InternetGatewayId"] for g in igws]
    # DeleteVpc also refuses while a security group other than the default is in it (e.g. EKS's cluster group).
    groups = lookup.call(member, "describe_security_groups", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    parts += [
        f"{g['GroupId']} ({g.get('GroupName', '')})"
        for g in groups["SecurityGroups"]
        if g.get("GroupName") != "default"
    ]
    return ", ".join(p for p in parts if p and p != "(unknown)") or "(unknown)"


def _subnets_in(member: Member, vpc_id: str, cidr: str | None) -> list[dict[str, Any]]:
    subnets = lookup.call(member, "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    return [
        dict(s)
        for s in subnets
        if cidr is None or ipaddress.IPv4Network(s["CidrBlock"]).subnet_of(ipaddress.IPv4Network(cidr))
    ]


def _describe_subnets(member: Member, vpc_id: str, cidr: str | None) -> str:
    inside = _subnets_in(member, vpc_id, cidr)
    return ", ".join(sorted(f"{s['SubnetId']} ({s['CidrBlock']})" for s in inside)) or "(unknown)"


# -- the VPC's sweep: mlplane resources the ledger does not list -------------------------------------------------
def sweep_vpc(member: Member, vpc: dict[str, Any]) -> None:
    """Remove every mlplane-tagged resource of this account left in the VPC, in dependency order.

    The ledger lists what a step recorded; a step still running when rollback starts (a Parallel branch
    whose sibling failed) may create after rollback walked past. Everything such a step makes carries
    mlplane's tags, so the VPC, undone last, first removes whatever mlplane-owned resources remain in it,
    with the same undo functions (which check the tags again). Nothing else is touched.
    """
    vpc_id = str(vpc["VpcId"])
    blank = _sweep_record(member)
    order: list[tuple[UndoFn, Callable[[], list[str]]]] = [
        (undo_nat, lambda: _owned_ids(member, "describe_nat_gateways", "NatGateways", "NatGatewayId", vpc_id)),
        (undo_eip, lambda: _free_eips(member)),
        (undo_vpce, lambda: _owned_ids(member, "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", vpc_id)),
        (
            undo_tgw_attachment,
            lambda: _owned_ids(
                member,
                "describe_transit_gateway_vpc_attachments",
                "TransitGatewayVpcAttachments",
                "TransitGatewayAttachmentId",
                vpc_id,
            ),
        ),
        (undo_igw, lambda: _attached_igws(member, vpc_id)),
        (_undo_any_association, lambda: _associations(member, vpc_id)),
        (undo_subnet, lambda: _owned_ids(member, "describe_subnets", "Subnets", "SubnetId", vpc_id)),
        (undo_route_table, lambda: _owned_ids(member, "describe_route_tables", "RouteTables", "RouteTableId", vpc_id)),
        (_undo_any_cidr, lambda: _secondary_cidrs(vpc)),
    ]
    for undo, ids in order:
        for resource_id in ids():
            undo(member, blank, resource_id)


def _owned_ids(member: Member, operation: str, result_key: str, id_key: str, vpc_id: str) -> list[str]:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, *lookup.tag_filters(member, "")[1:]]
    items = lookup.call(member, operation, Filters=filters)[result_key]
    return sorted(str(i[id_key]) for i in items if i.get("VpcId", vpc_id) == vpc_id and lookup.owned(member, i))


def _free_eips(member: Member) -> list[str]:
    addresses = lookup.call(member, "describe_addresses", Filters=lookup.tag_filters(member, "")[1:])["Addresses"]
    return sorted(
        str(a["AllocationId"])
        for a in addresses
        if lookup.owned(member, a)
        and lookup.tags_of(a).get(KEY_TAG, "").startswith("eip/")
        and not a.get("AssociationId")
    )


def _attached_igws(member: Member, vpc_id: str) -> list[str]:
    filters = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}, *lookup.tag_filters(member, "")[1:]]
    igws = lookup.call(member, "describe_internet_gateways", Filters=filters)["InternetGateways"]
    return sorted(str(g["InternetGatewayId"]) for g in igws if lookup.owned(member, g))


def _associations(member: Member, vpc_id: str) -> list[str]:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, *lookup.tag_filters(member, "")[1:]]
    tables = lookup.call(member, "describe_route_tables", Filters=filters)["RouteTables"]
    return sorted(
        str(a["RouteTableAssociationId"])
        for t in tables
        if lookup.owned(member, t)
        for a in t.get("Associations", [])
        if a.get("SubnetId") and not a.get("Main")
    )


def _undo_any_association(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _removed() if _attempt(member, "disassociate_route_table", AssociationId=resource_id) else _gone()


def _secondary_cidrs(vpc: dict[str, Any]) -> list[str]:
    return sorted(
        str(a["AssociationId"])
        for a in vpc.get("CidrBlockAssociationSet", [])
        if a.get("CidrBlock") != vpc.get("CidrBlock")
        and a.get("CidrBlockState", {}).get("State") in ("associating", "associated")
    )


def _undo_any_cidr(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _removed() if _attempt(member, "disassociate_vpc_cidr_block", AssociationId=resource_id) else _gone()


def _sweep_record(member: Member) -> ResourceRecord:
    return ResourceRecord(
        account_id=member.account_id,
        key="sweep",
        type="sweep",
        step=member.step,
        execution=member.execution,
        state=ResourceState.CREATED,
        seq=0,
    )


# -- network interfaces: who blocks a subnet or a VPC -----------------------------------------------------------
def _enis(member: Member, filter_name: str, value: str) -> list[dict[str, Any]]:
    answer = lookup.call(member, "describe_network_interfaces", Filters=[{"Name": filter_name, "Values": [value]}])
    return list(answer.get("NetworkInterfaces", []))


def _describe_enis(enis: list[dict[str, Any]]) -> str:
    described = []
    for eni in sorted(enis, key=lambda e: str(e["NetworkInterfaceId"])):
        about = eni.get("Description") or eni.get("InterfaceType") or eni.get("RequesterId") or ""
        described.append(f"{eni['NetworkInterfaceId']} ({about})" if about else str(eni["NetworkInterfaceId"]))
    return ", ".join(described) or "(unknown)"


# -- the pool allocation (tgw mode) ------------------------------------------------------------------------------
def undo_cidr_allocation(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Free the account's pool slot, the one place mlplane does (REQUIREMENTS C9; with its closed-account
    variant below, for an account whose role can no longer be assumed).

    Only once no VPC of the account holds the slot's CIDRs: the ledger lists no live VPC or transit gateway
    attachment, and EC2 shows no mlplane VPC of this account. While one is still there (a blocked rollback),
    the slot stays taken, so that no other account on the transit gateway gets the same CIDRs, and a re-run
    that finds the VPC by its tags builds on the same CIDRs.
    """
    holders = cidr_holders(member)
    if holders:
        raise Blocked(
            f"CIDR allocation {resource_id} of {member.account_id} kept while {', '.join(holders)} still exist"
        )
    freed = allocation.release(member.ledger, member.account_id, pool=record.data.get("pool"))
    return _removed() if freed else _gone()


def release_in_closed_account(ledger: Ledger, account_id: str) -> tuple[int, str | None]:
    """The closed-account variant of `undo_cidr_allocation` (nothing in the account can be described): free the
    slot only if the ledger lists no VPC or attachment that holds it, live or deferred (the closed-account step
    defers every record first, and a retried step finds them deferred). Returns (slots freed, why it was kept)."""
    holders = [
        r
        for r in ledger.resources(account_id, live_only=False)
        if r.type in (VPC, TGW_ATTACHMENT) and r.state != ResourceState.DELETED
    ]
    if not holders:
        return allocation.release(ledger, account_id), None
    pool = allocation.pointer_pool(ledger, account_id)  # the pool it was built with (N6), whatever its OU is now
    if pool is None or allocation.lookup(ledger, account_id, pool) is None:
        return 0, None
    names = ", ".join(f"{r.type} {r.resource_id or r.key}" for r in holders)
    return 0, f"kept: {names} cannot be verified gone in the closed account"


def cidr_holders(member: Member) -> list[str]:
    """What still holds the account's CIDRs: live VPC/attachment records and mlplane VPCs EC2 still shows."""
    recorded = {
        r.resource_id or r.key for r in member.ledger.resources(member.account_id) if r.type in (VPC, TGW_ATTACHMENT)
    }
    vpcs = lookup.call(member, "describe_vpcs", Filters=lookup.tag_filters(member, "")[1:])["Vpcs"]
    present = {str(v["VpcId"]) for v in vpcs if lookup.owned(member, v)}
    return sorted(recorded | present)


def _find_allocation(member: Member, record: ResourceRecord) -> str | None:
    found = allocation.lookup(member.ledger, member.account_id, str(record.data.get("pool", "")))
    return None if found is None else f"{found.pool}#{found.slot}"


# -- adopted resources (D3): never deleted; only mlplane's tags come off -------------------------------------------
def release_tags(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Take mlplane's tags off a hand-made resource it adopted, if they are still the adopted ones of this account."""
    filters = [{"Name": "resource-id", "Values": [resource_id]}, {"Name": "key", "Values": [MANAGED_TAG]}]
    found = lookup.call(member, "describe_tags", Filters=filters).get("Tags", [])
    tags = {t["Key"]: t["Value"] for t in found if t.get("ResourceId") == resource_id}
    if tags.get(MANAGED_TAG) != ADOPTED:
        return _gone("mlplane's adopted tags already gone")
    keys = [MANAGED_TAG, ACCOUNT_TAG, EXECUTION_TAG, KEY_TAG]
    _attempt(member, "delete_tags", purpose=ADOPT, Resources=[resource_id], Tags=[{"Key": k} for k in keys])
    return _removed()


def release_untagged(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """A hand-made route, association or CIDR block has no tags: releasing it changes nothing in AWS."""
    return _gone("adopted: left as it was")


# -- the handlers ----------------------------------------------------------------------------------------------
def _finder(fn: Callable[[Member, str, dict[str, Any]], str | None]) -> FindFn:
    def find(member: Member, record: ResourceRecord) -> str | None:
        try:
            return fn(member, record.key, record.data)
        except KeyError:  # an intent recorded without the data this finder needs: nothing to find by
            return None

    return find


HANDLERS = {
    VPC: Handler(find=_finder(lookup.find_vpc), undo=undo_vpc, release=release_tags),
    VPC_CIDR: Handler(find=_finder(lookup.find_vpc_cidr), undo=undo_vpc_cidr, release=release_untagged),
    SUBNET: Handler(find=_finder(lookup.find_subnet), undo=undo_subnet, release=release_tags),
    ROUTE_TABLE: Handler(find=_finder(lookup.find_route_table), undo=undo_route_table, release=release_tags),
    ROUTE: Handler(find=_finder(lookup.find_any_route), undo=undo_route, release=release_untagged),
    ASSOCIATION: Handler(find=_finder(lookup.find_association), undo=undo_association, release=release_untagged),
    IGW: Handler(find=_finder(lookup.find_igw), undo=undo_igw, release=release_tags),
    NAT: Handler(find=_finder(lookup.find_nat), undo=undo_nat, release=release_tags),
    EIP: Handler(find=_finder(lookup.find_eip), undo=undo_eip, release=release_tags),
    VPCE: Handler(find=_finder(lookup.find_vpce), undo=undo_vpce, release=release_tags),
    TGW_ATTACHMENT: Handler(find=_finder(lookup.find_tgw_attachment), undo=undo_tgw_attachment),
    CIDR_ALLOCATION: Handler(find=_find_allocation, undo=undo_cidr_allocation),
}
"""The undo handler of every network ledger type (`mlplane.rollback.registry`)."""
