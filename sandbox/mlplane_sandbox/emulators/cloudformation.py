"""CloudFormation's DescribeStacks for the stack the sandbox deploys (template.yaml, as `mlplane`).

The sandbox creates the template's resources itself (moto's CloudFormation would need its whole optional
stack, Docker and API Gateway included, to parse a SAM template); this answers DescribeStacks for it, so an
operator's client finds the stack's outputs as in AWS (`mlplane status --endpoint-url …` reads the ledger's
name and the state machines' ARNs from them). Shapes and the error follow botocore's model
(botocore/data/cloudformation/2010-05-15/service-2.json: DescribeStacksOutput, Stack, Output) and the query
protocol's XML; an unknown stack is `ValidationError` "Stack with id NAME does not exist" (HTTP 400), as
CloudFormation answers it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
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
    stack_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))

    def as_member(self) -> dict[str, Any]:
        return {
            "StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.name}/{self.stack_id}",
            "StackName": self.name,
            "CreationTime": self.created,
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": {"member": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]},
        }


_lock = threading.Lock()
_stacks: list[Stack] = []


def reset() -> None:
    with _lock:
        _stacks.clear()


def publish(name: str, account_id: str, region: str, outputs: dict[str, str]) -> None:
    """The stack `name` is CREATE_COMPLETE in that account and region, with these outputs."""
    with _lock:
        _stacks[:] = [s for s in _stacks if (s.name, s.account_id, s.region) != (name, account_id, region)]
        _stacks.append(Stack(name, account_id, region, dict(outputs)))


@emulate(SERVICE, "DescribeStacks")
def describe_stacks(call: Call) -> tuple[int, dict[str, str], bytes]:
    wanted = call.params.get("StackName")
    with _lock:
        here = [s for s in _stacks if (s.account_id, s.region) == (call.account_id, call.region)]
    # StackName is the stack's name or its ARN (the model: "The name or the unique stack ID").
    found = [s for s in here if wanted in (None, s.name, s.as_member()["StackId"])]
    if wanted is not None and not found:
        raise AwsError("ValidationError", f"Stack with id {wanted} does not exist", 400)
    request_id = str(uuid.uuid4())
    document = {
        "DescribeStacksResponse": {
            "@xmlns": _NAMESPACE,
            "DescribeStacksResult": {"Stacks": {"member": [s.as_member() for s in found]} if found else None},
            "ResponseMetadata": {"RequestId": request_id},
        }
    }
    body = xmltodict.unparse(document).encode()
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
