"""EC2 as AWS behaves where moto 5.2 is lenient: what the network step and its teardown depend on.

- DeleteSubnet while a NAT gateway (not `deleted`) or any network interface is in the subnet (e.g. the
  vendor's EKS cluster and nodes): `DependencyViolation` (moto deletes the subnet).
- DeleteVpc while a security group other than the VPC's default one is in it (e.g. EKS's cluster security
  group): `DependencyViolation` (moto deletes the VPC and the group with it).
- A NAT gateway's network interface is described as EC2 describes it (`Interface for NAT Gateway nat-…`,
  type `natGateway`, requester-managed).
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
- A public NAT gateway created while its VPC has no attached internet gateway goes `pending`, then `failed`
  with FailureCode `Gateway.NotAttached` (moto: `available`); its client token keeps answering with the failed
  gateway. A failed gateway holds neither its Elastic IP nor a network interface.
- CreateVpcEndpoint honours `ClientToken` as CreateNatGateway does (moto makes a second endpoint).
- Transit gateway VPC attachments (moto: `available` at once, tags dropped, tag filters ignored, a deleted
  attachment vanishes and deleting it again is a KeyError):
  - from an account other than the transit gateway's owner, `pendingAcceptance` unless the gateway has
    `AutoAcceptSharedAttachments=enable` (AWS's default is `disable`); otherwise `pending`, `available` 60
    virtual seconds later;
  - the attachment's tags are kept and DescribeTransitGatewayVpcAttachments honours its filters (`state`,
    `transit-gateway-attachment-id`, `transit-gateway-id`, `vpc-id`, `tag:<key>`, `tag-key`);
  - at most one subnet per Availability Zone (`DuplicateSubnetsInSameZone`), one live attachment per VPC and
    transit gateway (`DuplicateTransitGatewayAttachment`);
  - delete leaves it `deleting`, `deleted` 60 virtual seconds later and still described; deleting a `deleted`
    one is `InvalidTransitGatewayAttachmentID.NotFound`;
  - the account's first attachment creates the service-linked role `AWSServiceRoleForVPCTransitGateway`, so
    the caller needs `iam:CreateServiceLinkedRole` for `transitgateway.amazonaws.com`: without it (judged on
    the session policy of an assumed-role caller) the attachment is refused with `UnauthorizedOperation`.

Time is the sandbox's `VirtualClock`: botocore waiters advance it instead of sleeping. `reset()` forgets all
state and follows the current clock (the sandbox calls it at start; the rules also follow a clock swapped
by `clock.reset()` on their own).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from moto.core.serialize import EC2Serializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.ec2.models import ec2_backends
from moto.ec2.responses._base_response import EC2BaseResponse
from moto.iam.models import iam_backends
from moto.ram.models import ram_backends

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import iam_policy
from mlplane_sandbox.authorization import Authorization, Resource, tag_specifications
from mlplane_sandbox.rules import AwsError, Call, after, before, emulate

NAT_CREATE_SECONDS = 60.0
NAT_DELETE_SECONDS = 60.0
# AWS documents no duration for attachment creation or deletion; a minute, as for NAT gateways, keeps the
# waiters' polling honest without slowing the sandbox.
TGW_ATTACHMENT_SECONDS = 60.0
TGW_SERVICE = "transitgateway.amazonaws.com"
TGW_SERVICE_LINKED_ROLE = "AWSServiceRoleForVPCTransitGateway"
_EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_NAT = "nat"
_ATTACHMENT = "tgw-attachment"


@dataclass(frozen=True)
class _Token:
    nat_id: str
    subnet_id: str
    allocation_id: str


@dataclass(frozen=True)
class _Transition:
    account_id: str
    region: str
    resource_id: str
    to_state: str
    due: float
    kind: str = _NAT


@dataclass(frozen=True)
class _EndpointToken:
    endpoint_id: str
    request: tuple[Any, ...]


_lock = threading.RLock()
_tokens: dict[tuple[str, str, str], _Token] = {}
_endpoint_tokens: dict[tuple[str, str, str], _EndpointToken] = {}
_transitions: dict[tuple[str, str, str], _Transition] = {}
_prior_state: dict[tuple[str, str, str], str] = {}
_gone_attachments: dict[tuple[str, str, str], Any] = {}  # deleting/deleted attachments moto has forgotten
_clocks: list[clock_module.VirtualClock] = []  # clocks this module listens to (a clock is never dropped)


def reset() -> None:
    """Forget client tokens, pending transitions and deleted attachments; listen to the current clock."""
    with _lock:
        _tokens.clear()
        _endpoint_tokens.clear()
        _transitions.clear()
        _prior_state.clear()
        _gone_attachments.clear()
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


def _ec2_answer(operation: str, result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """`result` (moto's objects) as EC2 answers `operation`, serialised by moto's own EC2 serializer."""
    serializer = EC2Serializer(
        operation_model=get_service_model("ec2").operation_model(operation),
        pretty_print=False,
        value_picker=XFormedAttributePicker(response_transformers=EC2BaseResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER),
    )
    answer = serializer.serialize(result)
    body = answer["body"]
    return int(answer["status_code"]), dict(answer["headers"]), body.encode() if isinstance(body, str) else body


def _list_param(params: dict[str, Any], name: str) -> list[str]:
    """A list parameter of EC2's query protocol (`Name.1`, `Name.2`, ...), in order."""
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)$")
    found = sorted((int(m.group(1)), str(v)) for k, v in params.items() if (m := pattern.match(k)))
    return [value for _, value in found]


def _filters(params: dict[str, Any]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    pattern = re.compile(r"^Filter\.(\d+)\.Name$")
    for name, value in params.items():
        match = pattern.match(name)
        if match:
            filters[str(value)] = _list_param(params, f"Filter.{match.group(1)}.Value")
    return filters


# -- NAT gateways: client token, pending -> available, deleting -> deleted ---------------------------------------
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
                tags=tag_specifications(params),
                connectivity_type=str(params.get("ConnectivityType") or "public"),
            )
        except Exception as err:  # moto's own validation (unknown subnet or allocation)
            if hasattr(err, "code") and hasattr(err, "message"):
                raise _moto_error(err) from err
            raise
        nat.state = "pending"
        _describe_nat_interface(nat)
        if token:
            _tokens[(call.account_id, call.region, token)] = _Token(nat.id, subnet_id, allocation_id)
        # A public NAT gateway needs the VPC's internet gateway: without it, it fails (Gateway.NotAttached).
        outcome = "available" if nat.connectivity_type == "private" or _has_igw(backend, nat.vpc_id) else "failed"
        _schedule(call.account_id, call.region, nat.id, outcome, NAT_CREATE_SECONDS)
        return _nat_response(nat, token)


def _describe_nat_interface(nat: Any) -> None:
    """The gateway's interface as EC2 describes it: `Interface for NAT Gateway nat-…`, type `natGateway`, managed
    by AWS (moto: a plain `interface` with no description)."""
    eni = getattr(nat, "_eni", None)
    if eni is not None:
        eni.description = f"Interface for NAT Gateway {nat.id}"
        eni.interface_type = "natGateway"
        eni.requester_managed = True


def _has_igw(backend: Any, vpc_id: str) -> bool:
    return any(getattr(igw.vpc, "id", None) == vpc_id for igw in backend.internet_gateways.values())


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


def _schedule(
    account_id: str, region: str, resource_id: str, to_state: str, seconds: float, *, kind: str = _NAT
) -> None:
    due = clock_module.clock().now() + seconds
    with _lock:
        _transitions[(account_id, region, resource_id)] = _Transition(
            account_id, region, resource_id, to_state, due, kind
        )


def _on_advance(source: clock_module.VirtualClock, now: float) -> None:
    if source is not clock_module.clock():
        return  # a clock of an earlier sandbox run
    with _lock:
        due = [t for t in _transitions.values() if t.due <= now]
        for transition in due:
            del _transitions[(transition.account_id, transition.region, transition.resource_id)]
    for transition in due:
        if transition.kind == _ATTACHMENT:
            _complete_attachment(transition)
        else:
            _complete(transition)


def _complete(transition: _Transition) -> None:
    backend = ec2_backends[transition.account_id][transition.region]
    nat = backend.nat_gateways.get(transition.resource_id)
    if nat is None:
        return
    if transition.to_state in ("available", "failed"):
        if nat.state != "pending":
            return
        nat.state = transition.to_state
        if transition.to_state == "failed":
            # the failure text EC2's model documents for NatGateway.FailureMessage
            # (moto's NatGateway has no such fields; its serializer answers with them once they are set)
            nat.failure_code = "Gateway.NotAttached"  # type: ignore[attr-defined]
            nat.failure_message = f"Network {nat.vpc_id} has no Internet gateway attached"  # type: ignore[attr-defined]
            _free_nat(backend, nat)
        return
    nat.state = "deleted"
    _free_nat(backend, nat)


def _free_nat(backend: Any, nat: Any) -> None:
    """A deleted or failed gateway lets go of its Elastic IP and removes its network interface."""
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
    return [n for n in backend.nat_gateways.values() if n.state not in ("deleted", "failed")]


def _dead_nat_enis(backend: Any) -> set[str]:
    return {
        n._eni.id
        for n in backend.nat_gateways.values()
        if n.state in ("deleted", "failed") and getattr(n, "_eni", None)
    }


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


@before("ec2", "DeleteVpc")
def delete_vpc_with_security_groups(call: Call) -> None:
    """DeleteVpc (EC2 API reference): "you must ... delete all security groups associated with the VPC (except the
    default one)" first; moto deletes the VPC with them (e.g. EKS's cluster security group)."""
    vpc_id = str(call.params.get("VpcId", ""))
    groups = _backend(call).groups.get(vpc_id, {})
    if any(group.name != "default" for group in groups.values()):
        raise AwsError("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")


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


# -- CreateVpcEndpoint honours its client token --------------------------------------------------------------------
def _endpoint_request(params: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two CreateVpcEndpoint requests the same (tags aside, as for CreateNatGateway above)."""
    return (
        str(params.get("VpcId", "")),
        str(params.get("ServiceName", "")),
        str(params.get("VpcEndpointType") or "Gateway"),
        str(params.get("PolicyDocument", "")),
        tuple(sorted(_list_param(params, "RouteTableId"))),
        tuple(sorted(_list_param(params, "SubnetId"))),
        tuple(sorted(_list_param(params, "SecurityGroupId"))),
    )


@emulate("ec2", "CreateVpcEndpoint")
def create_vpc_endpoint_with_known_token(call: Call) -> tuple[int, dict[str, str], bytes] | None:
    """A known client token answers with its endpoint (or IdempotentParameterMismatch); a new one goes to moto."""
    token = str(call.params.get("ClientToken", ""))
    with _lock:
        known = _endpoint_tokens.get((call.account_id, call.region, token)) if token else None
    if known is None:
        return None
    if known.request != _endpoint_request(call.params):
        raise AwsError(
            "IdempotentParameterMismatch", f"Client token {token} was already used with different parameters."
        )
    endpoint = _backend(call).vpc_end_points.get(known.endpoint_id)
    if endpoint is None:
        return None
    return _ec2_answer("CreateVpcEndpoint", {"VpcEndpoint": endpoint, "ClientToken": token})


@after("ec2", "CreateVpcEndpoint")
def remember_endpoint_token(call: Call, parsed: dict[str, Any]) -> None:
    token = str(call.params.get("ClientToken", ""))
    answer = parsed.get("CreateVpcEndpointResponse", {})
    endpoint_id = str((answer.get("vpcEndpoint") or {}).get("vpcEndpointId", ""))
    if token and endpoint_id:
        with _lock:
            _endpoint_tokens.setdefault(
                (call.account_id, call.region, token), _EndpointToken(endpoint_id, _endpoint_request(call.params))
            )


# -- transit gateway VPC attachments: acceptance, tags and filters, one subnet per AZ, deletion ---------------------
_ATTACHMENT_OPTIONS = ("DnsSupport", "SecurityGroupReferencingSupport", "Ipv6Support", "ApplianceModeSupport")


def _attachment_not_found(attachment_id: str) -> AwsError:
    return AwsError(
        "InvalidTransitGatewayAttachmentID.NotFound",
        f"Transit Gateway VPC Attachment {attachment_id} was deleted or does not exist.",
    )


@emulate("ec2", "CreateTransitGatewayVpcAttachment")
def create_transit_gateway_vpc_attachment(call: Call) -> tuple[int, dict[str, str], bytes]:
    params = call.params
    backend = _backend(call)
    tgw_id, vpc_id = str(params.get("TransitGatewayId", "")), str(params.get("VpcId", ""))
    subnet_ids = _list_param(params, "SubnetIds")
    tgw = backend.transit_gateways.get(tgw_id)  # a shared one is linked in by attach_to_shared_transit_gateway
    if tgw is None:
        raise AwsError("InvalidTransitGatewayID.NotFound", f"Transit Gateway {tgw_id} was deleted or does not exist.")
    if vpc_id not in backend.vpcs:
        raise AwsError("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
    if not subnet_ids:
        raise AwsError("MissingParameter", "The request must contain the parameter SubnetIds.")
    zones: dict[str, list[str]] = {}
    for subnet_id in subnet_ids:
        try:
            subnet = backend.get_subnet(subnet_id)
        except Exception as err:  # moto's InvalidSubnetID.NotFound
            raise _moto_error(err) from err
        zones.setdefault(str(subnet.availability_zone), []).append(subnet_id)
    if any(len(ids) > 1 for ids in zones.values()):
        raise AwsError("DuplicateSubnetsInSameZone", "Duplicate Subnets for same AZ")
    if any(
        getattr(a, "vpc_id", None) == vpc_id and a.transit_gateway_id == tgw_id
        for a in backend.transit_gateway_attachments.values()
    ):
        raise AwsError(
            "DuplicateTransitGatewayAttachment",
            f"{tgw_id} has non-deleted Transit Gateway Attachments with same VPC ID.",
        )
    _ensure_service_linked_role(call)
    options = {name: str(params[f"Options.{name}"]) for name in _ATTACHMENT_OPTIONS if f"Options.{name}" in params}
    _follow_clock()
    with _lock:
        attachment = backend.create_transit_gateway_vpc_attachment(
            transit_gateway_id=tgw_id,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            tags=tag_specifications(params),
            options=options,
        )
        owner = str(tgw.ec2_backend.account_id)
        if owner != call.account_id and tgw.options.get("AutoAcceptSharedAttachments") != "enable":
            attachment.state = "pendingAcceptance"  # until the owner accepts it; the requester cannot
        else:
            attachment.state = "pending"
            _schedule(
                call.account_id, call.region, attachment.id, "available", TGW_ATTACHMENT_SECONDS, kind=_ATTACHMENT
            )
    return _ec2_answer("CreateTransitGatewayVpcAttachment", {"TransitGatewayVpcAttachment": attachment})


def _attachment_matches(attachment: Any, filters: dict[str, list[str]]) -> bool:
    tags = {t["key"]: t["value"] for t in attachment.get_tags()}
    fields = {
        "state": attachment.state,
        "transit-gateway-attachment-id": attachment.id,
        "transit-gateway-id": attachment.transit_gateway_id,
        "vpc-id": attachment.vpc_id,
    }
    for name, values in filters.items():
        if name in fields:
            matched = fields[name] in values
        elif name.startswith("tag:"):
            matched = tags.get(name[4:]) in values
        elif name == "tag-key":
            matched = bool(set(tags) & set(values))
        else:
            raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
        if not matched:
            return False
    return True


@emulate("ec2", "DescribeTransitGatewayVpcAttachments")
def describe_transit_gateway_vpc_attachments(call: Call) -> tuple[int, dict[str, str], bytes]:
    backend = _backend(call)
    ids = set(_list_param(call.params, "TransitGatewayAttachmentIds"))
    filters = _filters(call.params)
    with _lock:
        gone = [
            a
            for (account, region, _), a in _gone_attachments.items()
            if (account, region) == (call.account_id, call.region)
        ]
    candidates = [a for a in backend.transit_gateway_attachments.values() if a.resource_type == "vpc"] + gone
    found = [a for a in candidates if (not ids or a.id in ids) and _attachment_matches(a, filters)]
    return _ec2_answer("DescribeTransitGatewayVpcAttachments", {"TransitGatewayVpcAttachments": found})


@emulate("ec2", "DeleteTransitGatewayVpcAttachment")
def delete_transit_gateway_vpc_attachment(call: Call) -> tuple[int, dict[str, str], bytes]:
    attachment_id = str(call.params.get("TransitGatewayAttachmentId", ""))
    backend = _backend(call)
    key = (call.account_id, call.region, attachment_id)
    _follow_clock()
    with _lock:
        attachment = _gone_attachments.get(key)
        if attachment is not None:
            if attachment.state == "deleted":
                raise _attachment_not_found(attachment_id)
            return _ec2_answer("DeleteTransitGatewayVpcAttachment", {"TransitGatewayVpcAttachment": attachment})
        if attachment_id not in backend.transit_gateway_attachments:
            raise _attachment_not_found(attachment_id)
        attachment = backend.delete_transit_gateway_vpc_attachment(attachment_id)  # moto forgets it at once
        attachment.state = "deleting"
        _gone_attachments[key] = attachment
        _schedule(call.account_id, call.region, attachment_id, "deleted", TGW_ATTACHMENT_SECONDS, kind=_ATTACHMENT)
    return _ec2_answer("DeleteTransitGatewayVpcAttachment", {"TransitGatewayVpcAttachment": attachment})


def _complete_attachment(transition: _Transition) -> None:
    key = (transition.account_id, transition.region, transition.resource_id)
    with _lock:
        if transition.to_state == "deleted":
            gone = _gone_attachments.get(key)
            if gone is not None:
                gone.state = "deleted"
            return
        live = ec2_backends[transition.account_id][transition.region].transit_gateway_attachments.get(key[2])
        if live is not None and live.state == "pending":
            live.state = transition.to_state


# -- the service-linked role of the account's first attachment -----------------------------------------------------
def _session_policy(call: Call) -> dict[str, Any] | None:
    """The session policy of the assumed-role session that made the call, None if there is none."""
    if call.session_policy is None:
        return None  # an account's root, the sandbox's own calls, a session without a policy
    document: dict[str, Any] = json.loads(call.session_policy)
    return document


def _ensure_service_linked_role(call: Call) -> None:
    """EC2 creates AWSServiceRoleForVPCTransitGateway on the account's first attachment, as the caller.

    The member role itself (AWSControlTowerExecution) is an administrator; what limits mlplane is its session
    policy, so that is what decides here.
    """
    iam = iam_backends[call.account_id]["global"]
    if any(role.name == TGW_SERVICE_LINKED_ROLE for role in iam.roles.values()):
        return
    arn = f"arn:aws:iam::{call.account_id}:role/aws-service-role/{TGW_SERVICE}/{TGW_SERVICE_LINKED_ROLE}"
    policy = _session_policy(call)
    request = Authorization("iam:CreateServiceLinkedRole", (Resource(arn),), {"iam:AWSServiceName": (TGW_SERVICE,)})
    if policy is not None and not iam_policy.allows(policy, request):
        raise AwsError(
            "UnauthorizedOperation",
            f"You are not authorized to perform this operation. User: {call.principal} is not authorized to perform: "
            f"iam:CreateServiceLinkedRole on resource: {arn}",
            403,
        )
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": [TGW_SERVICE]}, "Action": ["sts:AssumeRole"]}],
    }
    with _lock:
        if not any(role.name == TGW_SERVICE_LINKED_ROLE for role in iam.roles.values()):
            iam.create_role(
                TGW_SERVICE_LINKED_ROLE,
                json.dumps(trust),
                f"/aws-service-role/{TGW_SERVICE}/",
                permissions_boundary=None,
                description="Allows VPC Transit Gateway to access EC2 resources on your behalf.",
                tags=[],
                max_session_duration="3600",
                linked_service=TGW_SERVICE,
            )
