"""Finding mlplane's EC2 resources again: by their `mlplane:*` tags, or by what the ledger record holds.

Shared by `apply` (a re-run, or a run after a crash between create and ledger write, finds instead of
creating) and `undo` (rollback of a record that only got as far as its intent). Read-only.
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError
from botocore.waiter import Waiter, WaiterModel, create_waiter_with_client

from mlplane import consistency
from mlplane.errors import Conflict, error_code, translate
from mlplane.member import ACCOUNT_TAG, ADOPT, ADOPTED, KEY_TAG, MANAGED_TAG, Member, adopted_here

LIVE_NAT_STATES = ("pending", "available")
LIVE_VPCE_STATES = ("pendingacceptance", "pending", "available")
DEAD_TGW_ATTACHMENT_STATES = ("deleting", "deleted", "failed", "failing", "rejected", "rejecting")


def ec2(member: Member, purpose: str | None = None) -> Any:
    """The member's EC2 client, or (`purpose`) one in that purpose's session (`mlplane.member.ADOPT`)."""
    return member.client("ec2", purpose)


def purpose_for(member: Member, item: dict[str, Any]) -> str | None:
    """The session to change a described resource's routes and tags in: the adopt session for one mlplane adopted
    (D3: the core session may change only what carries `mlplane:managed=true`), else the member's own."""
    return ADOPT if tags_of(item).get(MANAGED_TAG) == ADOPTED else None


def is_not_found(err: ClientError) -> bool:
    """AWS's many spellings of "no such resource" (InvalidVpcID.NotFound, NatGatewayNotFound, ...)."""
    return consistency.is_not_found(error_code(err))


def call(member: Member, operation: str, *, purpose: str | None = None, **kwargs: Any) -> Any:
    """One EC2 call; a ClientError becomes the mlplane error the workflow retries or rolls back on.

    The ids it names are ones mlplane knows exist (it just created them or read them), so a NotFound answer is
    EC2's eventual consistency and is retried for a while (`mlplane.consistency.settling`) before it counts.
    """
    try:
        with consistency.settling():
            return getattr(ec2(member, purpose), operation)(**kwargs)
    except ClientError as err:
        raise translate(err, f"ec2:{_op_name(operation)} in {member.account_id}") from err


def describe_or_none(
    member: Member, operation: str, result_key: str, *, settle: bool = False, **kwargs: Any
) -> list[dict[str, Any]] | None:
    """Describe by id: the items, or None when AWS says the id does not exist.

    `settle`: the id is one mlplane created (a parent the plan just made): NotFound is retried for a while first
    (`mlplane.consistency.settling`). Rollback settles its own execution's records around the whole undo.
    """
    try:
        with consistency.settling() if settle else contextlib.nullcontext():
            answer = getattr(ec2(member), operation)(**kwargs)
    except ClientError as err:
        if is_not_found(err):
            return None
        raise translate(err, f"ec2:{_op_name(operation)} in {member.account_id}") from err
    return list(answer.get(result_key, []))


def tag_filters(member: Member, key: str) -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{KEY_TAG}", "Values": [key]},
        {"Name": f"tag:{ACCOUNT_TAG}", "Values": [member.account_id]},
        {"Name": f"tag:{MANAGED_TAG}", "Values": ["true", ADOPTED]},  # adopted: found, never deleted (undo: owned)
    ]


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", item.get("TagSet", [])) or []}


def owned(member: Member, item: dict[str, Any]) -> bool:
    """Whether a described resource carries mlplane's tags for this account (the only thing undo touches)."""
    tags = tags_of(item)
    return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG) == member.account_id


def tracked(member: Member, item: dict[str, Any]) -> bool:
    """mlplane's own, or made by hand and adopted by mlplane for this account (D3): what mlplane may add routes
    and associations to, and remove the ones it added from; an adopted resource itself is never deleted."""
    return owned(member, item) or adopted_here(tags_of(item), member.account_id)


def _mine(member: Member, key: str, item: dict[str, Any]) -> bool:
    # Filters may be ignored by an implementation; check the tags on what comes back too.
    tags = tags_of(item)
    return tracked(member, item) and tags.get(KEY_TAG) == key


def find_vpc(member: Member, key: str, data: dict[str, Any]) -> str | None:
    vpcs = call(member, "describe_vpcs", Filters=tag_filters(member, key))["Vpcs"]
    return _first(v["VpcId"] for v in vpcs if _mine(member, key, v))


def find_vpc_cidr(member: Member, key: str, data: dict[str, Any]) -> str | None:
    vpcs = describe_or_none(member, "describe_vpcs", "Vpcs", settle=True, VpcIds=[data["vpc_id"]])
    for vpc in vpcs or []:
        for assoc in vpc.get("CidrBlockAssociationSet", []):
            state = assoc.get("CidrBlockState", {}).get("State")
            if assoc.get("CidrBlock") == data["cidr"] and state in ("associating", "associated"):
                return str(assoc["AssociationId"])
    return None


def find_subnet(member: Member, key: str, data: dict[str, Any]) -> str | None:
    subnets = call(member, "describe_subnets", Filters=tag_filters(member, key))["Subnets"]
    return _first(s["SubnetId"] for s in subnets if _mine(member, key, s))


def find_route_table(member: Member, key: str, data: dict[str, Any]) -> str | None:
    tables = call(member, "describe_route_tables", Filters=tag_filters(member, key))["RouteTables"]
    return _first(t["RouteTableId"] for t in tables if _mine(member, key, t))


def find_association(member: Member, key: str, data: dict[str, Any]) -> str | None:
    tables = describe_or_none(
        member, "describe_route_tables", "RouteTables", settle=True, RouteTableIds=[data["route_table_id"]]
    )
    for table in tables or []:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") == data["subnet_id"]:
                return str(assoc["RouteTableAssociationId"])
    return None


def route_id(route_table_id: str, destination: str) -> str:
    return f"{route_table_id}|{destination}"


def current_route(member: Member, route_table_id: str, destination: str) -> dict[str, Any] | None:
    tables = describe_or_none(
        member, "describe_route_tables", "RouteTables", settle=True, RouteTableIds=[route_table_id]
    )
    for table in tables or []:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == destination:
                return dict(route)
    return None


def route_target(route: dict[str, Any]) -> str | None:
    for field in ("NatGatewayId", "TransitGatewayId", "GatewayId"):
        if route.get(field):
            return str(route[field])
    return None


def find_route(member: Member, key: str, data: dict[str, Any]) -> str | None:
    """The route's id if it exists *and* points where the plan says (a route elsewhere gets replaced)."""
    route = current_route(member, data["route_table_id"], data["destination"])
    if route is None or route_target(route) != data["target_id"]:
        return None
    return route_id(data["route_table_id"], data["destination"])


def find_any_route(member: Member, key: str, data: dict[str, Any]) -> str | None:
    route = current_route(member, data["route_table_id"], data["destination"])
    return None if route is None else route_id(data["route_table_id"], data["destination"])


def find_igw(member: Member, key: str, data: dict[str, Any]) -> str | None:
    igws = call(member, "describe_internet_gateways", Filters=tag_filters(member, key))["InternetGateways"]
    return _first(g["InternetGatewayId"] for g in igws if _mine(member, key, g))


def find_eip(member: Member, key: str, data: dict[str, Any]) -> str | None:
    addresses = call(member, "describe_addresses", Filters=tag_filters(member, key))["Addresses"]
    return _first(a["AllocationId"] for a in addresses if _mine(member, key, a))


def find_nat(member: Member, key: str, data: dict[str, Any]) -> str | None:
    filters = [*tag_filters(member, key), {"Name": "state", "Values": list(LIVE_NAT_STATES)}]
    if data.get("subnet_id"):
        filters.append({"Name": "subnet-id", "Values": [data["subnet_id"]]})
    nats = call(member, "describe_nat_gateways", Filters=filters)["NatGateways"]
    return _first(n["NatGatewayId"] for n in nats if _mine(member, key, n) and n.get("State") in LIVE_NAT_STATES)


def find_vpce(member: Member, key: str, data: dict[str, Any]) -> str | None:
    endpoints = call(member, "describe_vpc_endpoints", Filters=tag_filters(member, key))["VpcEndpoints"]
    return _first(
        e["VpcEndpointId"]
        for e in endpoints
        if _mine(member, key, e) and str(e.get("State", "")).lower() in LIVE_VPCE_STATES
    )


def find_tgw_attachment(member: Member, key: str, data: dict[str, Any]) -> str | None:
    # DescribeTransitGatewayVpcAttachments returns Tags in AWS; the tag filters alone select mlplane's.
    found = call(member, "describe_transit_gateway_vpc_attachments", Filters=tag_filters(member, key))
    return _first(
        a["TransitGatewayAttachmentId"]
        for a in found["TransitGatewayVpcAttachments"]
        if a.get("State") not in DEAD_TGW_ATTACHMENT_STATES and (not a.get("Tags") or _mine(member, key, a))
    )


def tgw_attachment_owned(member: Member, attachment_id: str) -> dict[str, Any] | None:
    """The attachment if it still exists and carries mlplane's tags for this account."""
    filters = tag_filters(member, "")[1:]  # managed + account, any key
    found = describe_or_none(
        member,
        "describe_transit_gateway_vpc_attachments",
        "TransitGatewayVpcAttachments",
        TransitGatewayAttachmentIds=[attachment_id],
        Filters=filters,
    )
    for item in found or []:
        if item.get("TransitGatewayAttachmentId") == attachment_id and (not item.get("Tags") or owned(member, item)):
            return dict(item)
    return None


# -- adopt (D3): the hand-made resource for a plan key, by the seed's names, tags and CIDRs ----------------------
def _by_hand(member: Member, key: str, item: dict[str, Any]) -> bool:
    """Not one mlplane made: no mlplane:managed tag at all, or adopted for this account and key already."""
    tags = tags_of(item)
    if MANAGED_TAG not in tags:
        return True
    return tags.get(MANAGED_TAG) == ADOPTED and tags.get(ACCOUNT_TAG) == member.account_id and tags.get(KEY_TAG) == key


def _one(member: Member, key: str, ids: list[str]) -> str | None:
    if len(ids) > 1:
        raise Conflict(
            f"{len(ids)} resources in {member.account_id} match {key} ({', '.join(sorted(ids))}): adopt needs one"
        )
    return ids[0] if ids else None


def match_vpc(member: Member, key: str, name: str, cidr: str) -> str | None:
    vpcs = call(member, "describe_vpcs", Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    return _one(
        member,
        key,
        [
            str(v["VpcId"])
            for v in vpcs
            if v.get("CidrBlock") == cidr and tags_of(v).get("Name") == name and _by_hand(member, key, v)
        ],
    )


def match_subnet(member: Member, key: str, vpc_id: str, cidr: str, az: str) -> str | None:
    subnets = call(member, "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    return _one(
        member,
        key,
        [
            str(s["SubnetId"])
            for s in subnets
            if s.get("CidrBlock") == cidr and s.get("AvailabilityZone") == az and _by_hand(member, key, s)
        ],
    )


def match_route_table(member: Member, key: str, subnet_id: str) -> str | None:
    """The table explicitly associated with the (adopted) subnet."""
    filters = [{"Name": "association.subnet-id", "Values": [subnet_id]}]
    tables = call(member, "describe_route_tables", Filters=filters)["RouteTables"]
    return _one(
        member,
        key,
        [
            str(t["RouteTableId"])
            for t in tables
            if any(a.get("SubnetId") == subnet_id for a in t.get("Associations", [])) and _by_hand(member, key, t)
        ],
    )


def match_igw(member: Member, key: str, vpc_id: str) -> str | None:
    filters = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    igws = call(member, "describe_internet_gateways", Filters=filters)["InternetGateways"]
    return _one(member, key, [str(g["InternetGatewayId"]) for g in igws if _by_hand(member, key, g)])


def _nats_in(member: Member, subnet_id: str) -> list[dict[str, Any]]:
    filters = [{"Name": "subnet-id", "Values": [subnet_id]}, {"Name": "state", "Values": list(LIVE_NAT_STATES)}]
    nats = call(member, "describe_nat_gateways", Filters=filters)["NatGateways"]
    return [n for n in nats if n.get("SubnetId") == subnet_id and n.get("State") in LIVE_NAT_STATES]


def match_nat(member: Member, key: str, subnet_id: str) -> str | None:
    return _one(member, key, [str(n["NatGatewayId"]) for n in _nats_in(member, subnet_id) if _by_hand(member, key, n)])


def match_eip(member: Member, key: str, subnet_id: str) -> str | None:
    """The Elastic IP of the hand-made NAT gateway in the subnet."""
    ids = [
        str(a["AllocationId"])
        for n in _nats_in(member, subnet_id)
        if tags_of(n).get(MANAGED_TAG) != "true"
        for a in n.get("NatGatewayAddresses", [])
        if a.get("AllocationId")
    ]
    if not ids:
        return None
    addresses = call(member, "describe_addresses", AllocationIds=ids)["Addresses"]
    return _one(member, key, [str(a["AllocationId"]) for a in addresses if _by_hand(member, key, a)])


def match_vpce(member: Member, key: str, vpc_id: str, service_name: str) -> str | None:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service_name]}]
    endpoints = call(member, "describe_vpc_endpoints", Filters=filters)["VpcEndpoints"]
    return _one(
        member,
        key,
        [
            str(e["VpcEndpointId"])
            for e in endpoints
            if e.get("ServiceName") == service_name
            and str(e.get("State", "")).lower() in LIVE_VPCE_STATES
            and _by_hand(member, key, e)
        ],
    )


TGW_WAIT = {"Delay": 15, "MaxAttempts": 40}
"""The transit gateway attachment waiters' polling (as their model below says)."""

# botocore has no waiters for transit gateway attachments; these are botocore waiters all the same (its
# polling, back-off and limits), defined the way botocore's own waiters-2.json defines them.
_TGW_WAITERS = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "TransitGatewayAttachmentAvailable": {
                "operation": "DescribeTransitGatewayVpcAttachments",
                "delay": TGW_WAIT["Delay"],
                "maxAttempts": TGW_WAIT["MaxAttempts"],
                "acceptors": [
                    {
                        "state": "success",
                        "matcher": "pathAll",
                        "argument": "TransitGatewayVpcAttachments[].State",
                        "expected": "available",
                    },
                    *(
                        {
                            "state": "failure",
                            "matcher": "pathAny",
                            "argument": "TransitGatewayVpcAttachments[].State",
                            "expected": state,
                        }
                        # pendingAcceptance: only the transit gateway's owner can move it on (apply.py says so)
                        for state in ("failed", "rejected", "deleted", "deleting", "pendingAcceptance")
                    ),
                    # A just-created attachment may not be visible yet (as NatGatewayAvailable retries
                    # NatGatewayNotFound): EC2 eventual consistency.
                    {"state": "retry", "matcher": "error", "expected": "InvalidTransitGatewayAttachmentID.NotFound"},
                ],
            },
            "TransitGatewayAttachmentDeleted": {
                "operation": "DescribeTransitGatewayVpcAttachments",
                "delay": TGW_WAIT["Delay"],
                "maxAttempts": TGW_WAIT["MaxAttempts"],
                "acceptors": [
                    {
                        "state": "success",
                        "matcher": "pathAll",
                        "argument": "TransitGatewayVpcAttachments[].State",
                        "expected": "deleted",
                    },
                    {
                        "state": "success",
                        "matcher": "path",
                        "argument": "length(TransitGatewayVpcAttachments[]) == `0`",
                        "expected": True,
                    },
                    {"state": "success", "matcher": "error", "expected": "InvalidTransitGatewayAttachmentID.NotFound"},
                ],
            },
        },
    }
)


def tgw_attachment_waiter(member: Member, name: str) -> Waiter:
    """`TransitGatewayAttachmentAvailable` or `TransitGatewayAttachmentDeleted` for the member's EC2 client."""
    return create_waiter_with_client(name, _TGW_WAITERS, ec2(member))


def _first(ids: Any) -> str | None:
    values = sorted(str(i) for i in ids)
    return values[0] if values else None


def _op_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))
