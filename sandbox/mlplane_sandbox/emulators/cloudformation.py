"""CloudFormation's DescribeStacks and DescribeStackResource for the stack the sandbox deploys (template.yaml,
as `mlplane`).

The sandbox creates the template's resources itself (moto's CloudFormation would need its whole optional
stack, Docker and API Gateway included, to parse a SAM template); this answers DescribeStacks for it, so an
operator's client finds the stack's outputs as in AWS (`mlplane status --endpoint-url …` reads the ledger's
name and the state machines' ARNs from them; `mlplane plan|audit --endpoint-url …` finds ValidateAccount's
function by its logical id). Shapes and the error follow botocore's model
(botocore/data/cloudformation/2010-05-15/service-2.json: DescribeStacksOutput, Stack, Output,
DescribeStackResourceOutput, StackResourceDetail) and the query protocol's XML; an unknown stack is
`ValidationError` "Stack with id NAME does not exist", an unknown logical id `ValidationError` "Resource ID
does not exist for stack NAME" (HTTP 400), as CloudFormation answers them. The resource types are the
deployed ones: SAM's transform makes an AWS::Serverless::Function an AWS::Lambda::Function.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import xmltodict

from mlplane_sandbox.rules import AwsError, Call, emulate

SERVICE = "cloudformation"
_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


@dataclass(frozen=True)
class Stack:
    name: str
    account_id: str
    region: str
    outputs: dict[str, str]
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)  # logical id -> (physical id, type)
    stack_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))

    def as_member(self) -> dict[str, Any]:
        return {
            "StackId": stack_arn(self.name, self.account_id, self.region, self.stack_id),
            "StackName": self.name,
            "CreationTime": self.created,
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": {"member": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]},
        }


def stack_arn(name: str, account_id: str, region: str, stack_uuid: str) -> str:
    """A stack's id, as CloudFormation gives it (`AWS::StackId`)."""
    return f"arn:aws:cloudformation:{region}:{account_id}:stack/{name}/{stack_uuid}"


_lock = threading.Lock()
_stacks: list[Stack] = []


def reset() -> None:
    with _lock:
        _stacks.clear()


# What SAM's transform deploys for its resource types (the others are deployed as they are written).
_DEPLOYED_TYPES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
}


def publish(
    name: str,
    account_id: str,
    region: str,
    outputs: dict[str, str],
    resources: dict[str, tuple[str, str]] | None = None,
    *,
    stack_uuid: str | None = None,
) -> None:
    """The stack `name` is CREATE_COMPLETE in that account and region, with these outputs and resources
    (logical id -> (physical id, the template's type))."""
    deployed = {k: (physical, _DEPLOYED_TYPES.get(kind, kind)) for k, (physical, kind) in (resources or {}).items()}
    with _lock:
        _stacks[:] = [s for s in _stacks if (s.name, s.account_id, s.region) != (name, account_id, region)]
        stack = Stack(name, account_id, region, dict(outputs), deployed)
        _stacks.append(stack if stack_uuid is None else replace(stack, stack_id=stack_uuid))


def _found(call: Call, wanted: str | None) -> list[Stack]:
    with _lock:
        here = [s for s in _stacks if (s.account_id, s.region) == (call.account_id, call.region)]
    # StackName is the stack's name or its ARN (the model: "The name or the unique stack ID").
    found = [s for s in here if wanted in (None, s.name, s.as_member()["StackId"])]
    if wanted is not None and not found:
        raise AwsError("ValidationError", f"Stack with id {wanted} does not exist", 400)
    return found


def _xml(operation: str, result: dict[str, Any] | None) -> tuple[int, dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    document = {
        f"{operation}Response": {
            "@xmlns": _NAMESPACE,
            f"{operation}Result": result,
            "ResponseMetadata": {"RequestId": request_id},
        }
    }
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xmltodict.unparse(document).encode()


@emulate(SERVICE, "DescribeStacks")
def describe_stacks(call: Call) -> tuple[int, dict[str, str], bytes]:
    found = _found(call, call.params.get("StackName"))
    return _xml("DescribeStacks", {"Stacks": {"member": [s.as_member() for s in found]}} if found else None)


@emulate(SERVICE, "DescribeStackResource")
def describe_stack_resource(call: Call) -> tuple[int, dict[str, str], bytes]:
    [stack] = _found(call, call.params["StackName"])  # required by the model
    logical_id = call.params["LogicalResourceId"]
    if logical_id not in stack.resources:
        raise AwsError("ValidationError", f"Resource {logical_id} does not exist for stack {stack.name}", 400)
    physical, kind = stack.resources[logical_id]
    detail = {
        "StackName": stack.name,
        "StackId": stack.as_member()["StackId"],
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical,
        "ResourceType": kind,
        "LastUpdatedTimestamp": stack.created,
        "ResourceStatus": "CREATE_COMPLETE",
    }
    return _xml("DescribeStackResource", {"StackResourceDetail": detail})
