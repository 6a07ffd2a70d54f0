"""EC2 and IAM eventual consistency: an id mlplane just created answers NotFound for a while.

AWS sources: the EC2 API guide, "Eventual consistency in the Amazon EC2 API": "if you run a command to modify or
describe the resource that you just created, its ID might not have propagated throughout the system, and you
will get an error responding that the resource does not exist" (and its examples: InvalidInstanceID.NotFound on
DescribeInstances and on TerminateInstances, InvalidGroup.NotFound after CreateSecurityGroup); the IAM User
Guide, "Changes that I make are not always immediately visible". The error codes and HTTP statuses are the
ones EC2's error-code reference and botocore's IAM model (NoSuchEntityException, 404) give.

What the sandbox plays, for `delay` virtual seconds after the create (`configure(delay_seconds=...)`,
`mlplane local run --consistency-delay`, default 0: off):
- after-rules on mlplane's creates remember (account, id, virtual creation time): CreateVpc, CreateSubnet,
  CreateRouteTable, CreateInternetGateway, CreateNatGateway, CreateVpcEndpoint,
  CreateTransitGatewayVpcAttachment (EC2), CreateUser and CreatePolicy (IAM);
- before-rules answer the id's NotFound code instead of moto, to any call by mlplane (its functions and CLI)
  in `_EC2_USES` / `_IAM_USES` that names the id in a parameter (the guide's "modify or describe", which its
  TerminateInstances example extends to deletes):
  EC2 (HTTP 400): InvalidVpcID.NotFound, InvalidSubnetID.NotFound, InvalidRouteTableID.NotFound,
  InvalidInternetGatewayID.NotFound (InvalidGatewayID.NotFound as a route's GatewayId), NatGatewayNotFound,
  InvalidVpcEndpointId.NotFound, InvalidTransitGatewayAttachmentID.NotFound; IAM (HTTP 404): NoSuchEntity
  for the UserName or PolicyArn.
  That covers the describes by id (DescribeVpcs, DescribeSubnets, ...), the calls that take the new id right
  after the create (DescribeVpcAttribute, ModifyVpcAttribute, AssociateVpcCidrBlock, CreateSubnet and
  CreateRouteTable in the new VPC, AttachInternetGateway, CreateVpcEndpoint, ModifyVpcEndpoint,
  CreateNatGateway in the new subnet, CreateTransitGatewayVpcAttachment, AssociateRouteTable, CreateRoute,
  ReplaceRoute, CreateTags; AttachUserPolicy, GetUser, GetPolicy, the List* calls of a user or policy), and
  the deletes a rollback makes moments after the create (DeleteVpc, DeleteSubnet, DetachInternetGateway,
  DeleteNatGateway, ...; DetachUserPolicy, DeleteUser, DeletePolicy).
Not played: describes by filter (AWS may also leave a new resource out of a filtered list; mlplane's finders
use tag filters), DeleteVpcEndpoints (it answers per id in `Unsuccessful`), Elastic IPs, association ids, a NAT
gateway as a route target (routes come after the NAT gateways are waited for until `available`), the
propagation of deletes, and calls by the sandbox itself (world-building, vendor simulator, inventory), which do
not retry. `reset()` forgets every creation; a creation seen on an earlier clock counts as long visible.
Within the Lambda invocation that made the create, the delay runs on that invocation's own sleeps, not on the
shared clock, which concurrent Parallel branches also advance: a call right after the create meets NotFound
however long a sibling branch waited meanwhile, as in AWS, where the branches' waits overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlplane_sandbox.clock import Budget, VirtualClock, clock, current_budget
from mlplane_sandbox.rules import AwsError, Call, after, before


@dataclass(frozen=True)
class _NotFound:
    code: str
    message: str  # with {id}
    status: int = 400


# EC2 create -> (path of the new id in the parsed XML answer, what a call naming it answers meanwhile)
_EC2_CREATES: dict[str, tuple[tuple[str, ...], _NotFound]] = {
    "CreateVpc": (("vpc", "vpcId"), _NotFound("InvalidVpcID.NotFound", "The vpc ID '{id}' does not exist")),
    "CreateSubnet": (
        ("subnet", "subnetId"),
        _NotFound("InvalidSubnetID.NotFound", "The subnet ID '{id}' does not exist"),
    ),
    "CreateRouteTable": (
        ("routeTable", "routeTableId"),
        _NotFound("InvalidRouteTableID.NotFound", "The routeTable ID '{id}' does not exist"),
    ),
    "CreateInternetGateway": (
        ("internetGateway", "internetGatewayId"),
        _NotFound("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{id}' does not exist"),
    ),
    "CreateNatGateway": (
        ("natGateway", "natGatewayId"),
        _NotFound("NatGatewayNotFound", "The Nat Gateway {id} was not found"),
    ),
    "CreateVpcEndpoint": (
        ("vpcEndpoint", "vpcEndpointId"),
        _NotFound("InvalidVpcEndpointId.NotFound", "The Vpc Endpoint Id '{id}' does not exist"),
    ),
    "CreateTransitGatewayVpcAttachment": (
        ("transitGatewayVpcAttachment", "transitGatewayAttachmentId"),
        _NotFound(
            "InvalidTransitGatewayAttachmentID.NotFound",
            "Transit Gateway Attachment {id} was deleted or does not exist.",
        ),
    ),
}
_GATEWAY_TARGET = _NotFound("InvalidGatewayID.NotFound", "The gateway ID '{id}' does not exist")
_NO_SUCH_USER = _NotFound("NoSuchEntity", "The user with name {id} cannot be found.", 404)
_NO_SUCH_POLICY = _NotFound("NoSuchEntity", "Policy {id} does not exist or is not attachable.", 404)

_EC2_USES = (
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeRouteTables",
    "DescribeInternetGateways",
    "DescribeNatGateways",
    "DescribeVpcEndpoints",
    "DescribeTransitGatewayVpcAttachments",
    "DescribeVpcAttribute",
    "ModifyVpcAttribute",
    "AssociateVpcCidrBlock",
    "CreateSubnet",
    "CreateRouteTable",
    "AttachInternetGateway",
    "CreateVpcEndpoint",
    "ModifyVpcEndpoint",
    "CreateNatGateway",
    "CreateTransitGatewayVpcAttachment",
    "AssociateRouteTable",
    "CreateRoute",
    "ReplaceRoute",
    "DeleteRoute",
    "CreateTags",
    "DeleteVpc",
    "DeleteSubnet",
    "DeleteRouteTable",
    "DetachInternetGateway",
    "DeleteInternetGateway",
    "DeleteNatGateway",
    "DeleteTransitGatewayVpcAttachment",
)
_IAM_USES = (
    "GetUser",
    "ListUserTags",
    "ListAttachedUserPolicies",
    "ListAccessKeys",
    "ListUserPolicies",
    "ListGroupsForUser",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "DeleteUser",
    "GetPolicy",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "ListPolicyTags",
    "ListEntitiesForPolicy",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "TagPolicy",
    "UntagPolicy",
    "DeletePolicy",
)
_IAM_ID_PARAMETERS = ("UserName", "PolicyArn")
_EC2_SKIPPED_PREFIXES = ("Filter.", "TagSpecification.", "Tag.")  # filters list, they do not name an id


@dataclass(frozen=True)
class _Created:
    clock: VirtualClock
    at: float
    answer: _NotFound
    # The creating invocation and the virtual seconds it had slept then: within one Lambda invocation only its
    # own sleeps pass (its concurrent siblings' sleeps advance the shared clock but not its wall time).
    invocation: Budget | None = None
    slept: float = 0.0

    def age(self, now: float) -> float:
        running = current_budget()
        if running is not None and running is self.invocation:
            return running.used - self.slept
        return now - self.at


@dataclass
class _Config:
    delay_seconds: float = 0.0


_lock = threading.Lock()
_config = _Config()
_created: dict[tuple[str, str], _Created] = {}  # (account, id) -> when mlplane created it


def configure(*, delay_seconds: float) -> None:
    """How long (virtual seconds) a new id stays invisible; 0 turns the rule off."""
    with _lock:
        _config.delay_seconds = float(delay_seconds)


def reset() -> None:
    """Off, and no remembered creations (between sandbox runs)."""
    with _lock:
        _config.delay_seconds = 0.0
        _created.clear()


def note_created(account_id: str, resource_id: str, answer: _NotFound) -> None:
    now = clock()
    running = current_budget()
    with _lock:
        _created[(account_id, resource_id)] = _Created(
            now, now.now(), answer, running, running.used if running is not None else 0.0
        )


def _invisible(account_id: str, resource_id: str) -> _NotFound | None:
    """What a call naming `resource_id` answers now, if the id has not propagated yet."""
    with _lock:
        seen = _created.get((account_id, resource_id))
        delay = _config.delay_seconds
    current = clock()
    if seen is None or seen.clock is not current or delay <= 0:
        return None
    return seen.answer if seen.age(current.now()) < delay else None


def _refuse(resource_id: str, answer: _NotFound) -> None:
    raise AwsError(answer.code, answer.message.format(id=resource_id), answer.status)


# -- creates ---------------------------------------------------------------------------------------------------
def _at(parsed: dict[str, Any], path: tuple[str, ...]) -> str | None:
    node: Any = next(iter(parsed.values()), None) if parsed else None  # under <XxxResponse>
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return str(node) if node else None


def _ec2_recorder(path: tuple[str, ...], answer: _NotFound) -> Callable[[Call, dict[str, Any]], None]:
    def created(call: Call, parsed: dict[str, Any]) -> None:
        resource_id = _at(parsed, path)
        if call.by_mlplane and resource_id:
            note_created(call.account_id, resource_id, answer)

    return created


for _operation, (_path, _answer) in _EC2_CREATES.items():
    after("ec2", _operation)(_ec2_recorder(_path, _answer))


@after("iam", "CreateUser")
def user_created(call: Call, parsed: dict[str, Any]) -> None:
    del parsed
    if call.by_mlplane:
        note_created(call.account_id, str(call.params.get("UserName", "")), _NO_SUCH_USER)


@after("iam", "CreatePolicy")
def policy_created(call: Call, parsed: dict[str, Any]) -> None:
    arn = _at(parsed, ("CreatePolicyResult", "Policy", "Arn"))
    if call.by_mlplane and arn:
        note_created(call.account_id, arn, _NO_SUCH_POLICY)


# -- uses ------------------------------------------------------------------------------------------------------
def ec2_not_yet_visible(call: Call) -> None:
    if not call.by_mlplane:
        return
    for name, value in call.params.items():
        if name.startswith(_EC2_SKIPPED_PREFIXES) or not isinstance(value, str):
            continue
        answer = _invisible(call.account_id, value)
        if answer is not None:
            _refuse(value, _GATEWAY_TARGET if name == "GatewayId" else answer)


def iam_not_yet_visible(call: Call) -> None:
    if not call.by_mlplane:
        return
    for name in _IAM_ID_PARAMETERS:
        value = call.params.get(name)
        answer = _invisible(call.account_id, str(value)) if value else None
        if answer is not None:
            _refuse(str(value), answer)


for _operation in _EC2_USES:
    before("ec2", _operation)(ec2_not_yet_visible)
for _operation in _IAM_USES:
    before("iam", _operation)(iam_not_yet_visible)
