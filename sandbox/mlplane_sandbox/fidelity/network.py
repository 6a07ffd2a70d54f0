"""EC2 as AWS behaves where moto 5.2 is lenient: what the network step and its teardown depend on.

- DeleteSubnet while a NAT gateway (not `deleted`) or any network interface is in the subnet:
  `DependencyViolation` (moto deletes the subnet).
- ReleaseAddress while the address is associated (e.g. to a NAT gateway that is not `deleted`):
  `InvalidIPAddress.InUse` (moto silently disassociates it).
- DetachInternetGateway while the VPC has mapped public addresses: `DependencyViolation`.
- DeleteInternetGateway while attached: `DependencyViolation`.
- CreateNatGateway honours `ClientToken`: a retry with the same token answers with the same gateway, a
  different request with the same token is `IdempotentParameterMismatch` (moto makes a second gateway).
- NAT gateways take time: `pending` at creation, `available` 60 virtual seconds later; DeleteNatGateway leaves
  it `deleting`, `deleted` 60 virtual seconds later, when its Elastic IP is disassociated and its network
  interface removed (moto: `available` and `deleted` at once, and the interface stays forever).
- DeleteRouteTable drops the table from the gateway endpoints that served it (moto keeps it, and then
  refuses DeleteVpcEndpoints).
- A transit gateway another account shares through RAM can be attached to and routed to (moto only looks in
  the caller's own account).

Time is the sandbox's `VirtualClock`: botocore waiters advance it instead of sleeping. `reset()` forgets all
state and follows the current clock (the sandbox calls it at start; the rules also follow a clock swapped
by `clock.reset()` on their own).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from moto.ec2.models import ec2_backends
from moto.ram.models import ram_backends

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox.rules import AwsError, Call, after, before, emulate

NAT_CREATE_SECONDS = 60.0
NAT_DELETE_SECONDS = 60.0
_EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass(frozen=True)
class _Token:
    nat_id: str
    subnet_id: str
    allocation_id: str


@dataclass(frozen=True)
class _Transition:
    account_id: str
    region: str
    nat_id: str
    to_state: str
    due: float


_lock = threading.RLock()
_tokens: dict[tuple[str, str, str], _Token] = {}
_transitions: dict[tuple[str, str, str], _Transition] = {}
_prior_state: dict[tuple[str, str, str], str] = {}
_clocks: list[clock_module.VirtualClock] = []  # clocks this module listens to (a clock is never dropped)


def reset() -> None:
    """Forget client tokens and pending transitions; listen to the current clock."""
    with _lock:
        _tokens.clear()
        _transitions.clear()
        _prior_state.clear()
    _follow_clock()


def _follow_clock() -> clock_module.VirtualClock:
    current = clock_module.clock()
    with _lock:
        if not any(c is current for c in _clocks):
            _clocks.append(current)
            current.on_advance(functools.partial(_on_advance, current))
    return current


def _backend(call: Call) -> Any:
    return ec2_backends[call.account_id][call.region]


def _moto_error(err: Exception) -> AwsError:
    return AwsError(str(getattr(err, "code", "InvalidParameterValue")), str(getattr(err, "message", err)), 400)


# -- NAT gateways: client token, pending -> available, deleting -> deleted ---------------------------------------
def _tags_from(params: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    pattern = re.compile(r"^TagSpecification\.(\d+)\.Tag\.(\d+)\.Key$")
    for name, key in params.items():
        match = pattern.match(name)
        if match:
            spec, index = match.groups()
            tags[str(key)] = str(params.get(f"TagSpecification.{spec}.Tag.{index}.Value", ""))
    return tags


# The interceptor takes (status, headers, body) from an emulator too: EC2 answers in XML, not JSON.
@emulate("ec2", "CreateNatGateway")
def create_nat_gateway(call: Call) -> tuple[int, dict[str, str], bytes]:
    params = call.params
    subnet_id = str(params.get("SubnetId", ""))
    allocation_id = str(params.get("AllocationId", ""))
    token = str(params.get("ClientToken", ""))
    backend = _backend(call)
    _follow_clock()
    with _lock:
        known = _tokens.get((call.account_id, call.region, token)) if token else None
        if known is not None:
            if (known.subnet_id, known.allocation_id) != (subnet_id, allocation_id):
                raise AwsError(
                    "IdempotentParameterMismatch",
                    f"Client token {token} was already used with different parameters.",
                )
            nat = backend.nat_gateways.get(known.nat_id)
            if nat is not None:
                return _nat_response(nat, token)
        try:
            nat = backend.create_nat_gateway(
                subnet_id=subnet_id,
                allocation_id=allocation_id or None,
                tags=_tags_from(params),
                connectivity_type=str(params.get("ConnectivityType") or "public"),
            )
        except Exception as err:  # moto's own validation (unknown subnet or allocation)
            if hasattr(err, "code") and hasattr(err, "message"):
                raise _moto_error(err) from err
            raise
        nat.state = "pending"
        if token:
            _tokens[(call.account_id, call.region, token)] = _Token(nat.id, subnet_id, allocation_id)
        _schedule(call.account_id, call.region, nat.id, "available", NAT_CREATE_SECONDS)
        return _nat_response(nat, token)


def _xml(parent: ElementTree.Element, value: dict[str, Any]) -> None:
    """EC2's XML: a dict is a structure, {"item": [...]} a list."""
    for name, child in value.items():
        element = ElementTree.SubElement(parent, name)
        if isinstance(child, dict) and list(child) == ["item"]:
            for item in child["item"]:
                _xml(ElementTree.SubElement(element, "item"), item)
        elif isinstance(child, dict):
            _xml(element, child)
        else:
            element.text = str(child)


def _nat_response(nat: Any, token: str) -> tuple[int, dict[str, str], bytes]:
    addresses = [
        {
            "allocationId": a.get("allocationId"),
            "networkInterfaceId": a.get("networkInterfaceId"),
            "privateIp": a.get("privateIp"),
            "publicIp": a.get("publicIp"),
            "associationId": a.get("associationId"),
            "isPrimary": "true",
            "status": "succeeded",
        }
        for a in nat.address_set
    ]
    gateway: dict[str, Any] = {
        "createTime": nat.create_time,
        "natGatewayAddressSet": {"item": [{k: v for k, v in a.items() if v} for a in addresses]},
        "natGatewayId": nat.id,
        "state": nat.state,
        "subnetId": nat.subnet_id,
        "vpcId": nat.vpc_id,
        "connectivityType": nat.connectivity_type or "public",
        "tagSet": {"item": [{"key": t["key"], "value": t["value"]} for t in nat.get_tags()]},
    }
    root = ElementTree.Element("CreateNatGatewayResponse", xmlns=_EC2_XMLNS)
    _xml(root, {"requestId": str(uuid.uuid4()), **({"clientToken": token} if token else {}), "natGateway": gateway})
    body = ElementTree.tostring(root, encoding="unicode")
    return 200, {"Content-Type": "text/xml"}, body.encode()


@before("ec2", "DeleteNatGateway")
def delete_nat_gateway_known(call: Call) -> None:
    nat_id = str(call.params.get("NatGatewayId", ""))
    nat = _backend(call).nat_gateways.get(nat_id)
    if nat is None:
        raise AwsError("NatGatewayNotFound", f"NAT gateway {nat_id} was not found")
    with _lock:
        _prior_state[(call.account_id, call.region, nat_id)] = str(nat.state)


@after("ec2", "DeleteNatGateway")
def delete_nat_gateway_takes_time(call: Call, parsed: dict[str, Any]) -> None:
    key = (call.account_id, call.region, str(call.params.get("NatGatewayId", "")))
    nat = _backend(call).nat_gateways.get(key[2])
    _follow_clock()
    with _lock:
        prior = _prior_state.pop(key, "available")
        if nat is None:
            return
        if prior in ("deleting", "deleted"):
            nat.state = prior  # deleting again changes nothing
            return
        nat.state = "deleting"
        _schedule(call.account_id, call.region, nat.id, "deleted", NAT_DELETE_SECONDS)


def _schedule(account_id: str, region: str, nat_id: str, to_state: str, seconds: float) -> None:
    due = clock_module.clock().now() + seconds
    with _lock:
        _transitions[(account_id, region, nat_id)] = _Transition(account_id, region, nat_id, to_state, due)


def _on_advance(source: clock_module.VirtualClock, now: float) -> None:
    if source is not clock_module.clock():
        return  # a clock of an earlier sandbox run
    with _lock:
        due = [t for t in _transitions.values() if t.due <= now]
        for transition in due:
            del _transitions[(transition.account_id, transition.region, transition.nat_id)]
    for transition in due:
        _complete(transition)


def _complete(transition: _Transition) -> None:
    backend = ec2_backends[transition.account_id][transition.region]
    nat = backend.nat_gateways.get(transition.nat_id)
    if nat is None:
        return
    if transition.to_state == "available":
        if nat.state == "pending":
            nat.state = "available"
        return
    nat.state = "deleted"
    for address in nat.address_set:
        association = address.get("associationId")
        if association:
            with contextlib.suppress(Exception):  # already disassociated
                backend.disassociate_address(association_id=association)
            address["associationId"] = None
    eni = getattr(nat, "_eni", None)
    if eni is not None and eni.id in backend.enis:
        backend.enis.pop(eni.id, None)


def _live_nats(backend: Any) -> list[Any]:
    return [n for n in backend.nat_gateways.values() if n.state != "deleted"]


def _dead_nat_enis(backend: Any) -> set[str]:
    return {n._eni.id for n in backend.nat_gateways.values() if n.state == "deleted" and getattr(n, "_eni", None)}


# -- dependency checks moto skips ---------------------------------------------------------------------------------
@before("ec2", "DeleteSubnet")
def delete_subnet_in_use(call: Call) -> None:
    subnet_id = str(call.params.get("SubnetId", ""))
    backend = _backend(call)
    dead = _dead_nat_enis(backend)
    users = [n.id for n in _live_nats(backend) if n.subnet_id == subnet_id]
    users += [
        eni.id
        for eni in backend.enis.values()
        if getattr(getattr(eni, "subnet", None), "id", None) == subnet_id and eni.id not in dead
    ]
    if users:
        raise AwsError("DependencyViolation", f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")


@before("ec2", "ReleaseAddress")
def release_address_in_use(call: Call) -> None:
    backend = _backend(call)
    allocation_id = call.params.get("AllocationId")
    public_ip = call.params.get("PublicIp")
    for address in backend.addresses:
        if (allocation_id and address.allocation_id == allocation_id) or (public_ip and address.public_ip == public_ip):
            on_nat = any(
                a.get("allocationId") == address.allocation_id for n in _live_nats(backend) for a in n.address_set
            )
            if on_nat or address.association_id or address.eni is not None or address.instance is not None:
                raise AwsError("InvalidIPAddress.InUse", f"Address {address.public_ip} is in use.")


@before("ec2", "DetachInternetGateway")
def detach_igw_with_mapped_addresses(call: Call) -> None:
    backend = _backend(call)
    vpc_id = str(call.params.get("VpcId", ""))
    mapped = [
        a.public_ip for a in backend.addresses if a.eni is not None and getattr(a.eni.subnet, "vpc_id", None) == vpc_id
    ]
    mapped += [
        a.get("publicIp") for n in _live_nats(backend) if n.vpc_id == vpc_id for a in n.address_set if a.get("publicIp")
    ]
    if mapped:
        raise AwsError(
            "DependencyViolation",
            f"Network {vpc_id} has some mapped public address(es). "
            "Please unmap those public address(es) before detaching the gateway.",
        )


@before("ec2", "DeleteInternetGateway")
def delete_attached_igw(call: Call) -> None:
    igw_id = str(call.params.get("InternetGatewayId", ""))
    igw = _backend(call).internet_gateways.get(igw_id)
    if igw is not None and igw.vpc is not None:
        raise AwsError("DependencyViolation", f"The internetGateway '{igw_id}' has dependencies and cannot be deleted.")


# -- transit gateways shared through RAM (seed 002's hub and spoke) --------------------------------------------------
def _shared_with(share: Any, account_id: str) -> bool:
    if getattr(share, "status", "ACTIVE") != "ACTIVE":
        return False
    for principal in getattr(share, "principals", []):
        text = str(principal)
        if text == account_id or f":{account_id}:" in text or ":organization/" in text or ":ou/" in text:
            return True  # the sandbox's member accounts all belong to the one organization
    return False


def _link_shared_transit_gateway(call: Call, tgw_id: str) -> None:
    """Make a transit gateway that another account shares with the caller (RAM) usable from the caller's EC2.

    AWS lets an account attach its VPC to, and route to, a transit gateway shared with it; moto only looks in
    the caller's own account. The shared gateway (and its default route table) is linked into the caller's
    backend, as DescribeTransitGateways in AWS also shows shared gateways to the consumer.
    """
    backend = _backend(call)
    if not tgw_id or tgw_id in backend.transit_gateways:
        return
    for owner, regions in list(ec2_backends.items()):
        if owner == call.account_id or call.region not in regions:
            continue
        tgw = ec2_backends[owner][call.region].transit_gateways.get(tgw_id)
        if tgw is None:
            continue
        shares = ram_backends[owner][call.region].resource_shares if call.region in ram_backends[owner] else []
        if any(
            _shared_with(share, call.account_id) and any(arn.endswith(f"/{tgw_id}") for arn in share.resource_arns)
            for share in shares
        ):
            with _lock:
                backend.transit_gateways.setdefault(tgw_id, tgw)
                table = getattr(tgw, "default_route_table", None)
                if table is not None:
                    backend.transit_gateways_route_tables.setdefault(table.id, table)
        return


@before("ec2", "CreateTransitGatewayVpcAttachment")
def attach_to_shared_transit_gateway(call: Call) -> None:
    _link_shared_transit_gateway(call, str(call.params.get("TransitGatewayId", "")))


@before("ec2", "CreateRoute")
def route_to_shared_transit_gateway(call: Call) -> None:
    _link_shared_transit_gateway(call, str(call.params.get("TransitGatewayId", "")))


@before("ec2", "ReplaceRoute")
def replace_route_to_shared_transit_gateway(call: Call) -> None:
    _link_shared_transit_gateway(call, str(call.params.get("TransitGatewayId", "")))


# -- gateway endpoints forget a deleted route table ------------------------------------------------------------------
@after("ec2", "DeleteRouteTable")
def endpoints_forget_deleted_route_table(call: Call, parsed: dict[str, Any]) -> None:
    """AWS drops a deleted route table from the gateway endpoints that served it; moto keeps the id, and a later
    DeleteVpcEndpoints then fails with InvalidRouteTableID.NotFound."""
    table_id = str(call.params.get("RouteTableId", ""))
    for endpoint in _backend(call).vpc_end_points.values():
        ids = getattr(endpoint, "route_table_ids", None)
        if ids and table_id in ids:
            endpoint.route_table_ids = [t for t in ids if t != table_id]
