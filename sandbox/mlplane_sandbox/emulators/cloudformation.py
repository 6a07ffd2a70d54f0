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

import json
import re
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

    @property
    def arn(self) -> str:
        """Its id, as CloudFormation gives it (`AWS::StackId`)."""
        return stack_arn(self.name, self.account_id, self.region, self.stack_id)

    def as_member(self) -> dict[str, Any]:
        return {
            "StackId": self.arn,
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
        _member_stacks.clear()
        _deleted_stacks.clear()


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


def _published(account_id: str, region: str, wanted: str | None) -> list[Stack]:
    """The published stacks there; with `wanted`, the one it names: StackName is the stack's name or its ARN
    (the model: "The name or the unique stack ID")."""
    with _lock:
        return [
            s for s in _stacks if (s.account_id, s.region) == (account_id, region) and wanted in (None, s.name, s.arn)
        ]


def hub_stack_id(account_id: str, region: str, name: str) -> str | None:
    """The id (ARN) of the published stack that `name` (its name or id) names there, if any."""
    found = _published(account_id, region, name)
    return found[0].arn if found else None


def _found(call: Call, wanted: str | None) -> list[Stack]:
    found: list[Any] = _published(call.account_id, call.region, wanted)
    member = _member_stack(call, str(wanted)) if wanted is not None else None
    if member is not None:
        found.append(member)
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
        "StackId": stack.as_member()["StackId"],  # a member stack too
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical,
        "ResourceType": kind,
        "LastUpdatedTimestamp": stack.created,
        "ResourceStatus": "CREATE_COMPLETE",
    }
    return _xml("DescribeStackResource", {"StackResourceDetail": detail})


# -- stacks in member accounts: what a Service Catalog launch creates -------------------------------------------
# CloudFormation creates a stack's resources with the caller's credentials when no service role is given (here
# the launch role Service Catalog assumed), so the engine below makes each resource provider's calls as the
# caller, through the sandbox: they are recorded, authorised and answered like any other call. It knows the
# resource types of mlplane's product templates only (an unknown type fails the stack, as a type CloudFormation
# does not know does: "Unrecognized resource types").
#
# The calls per resource type are the resource providers' create and delete handlers as their schemas declare
# their permissions (aws-cloudformation-resource-providers: handlers.create/delete.permissions of AWS::IAM::Role,
# AWS::EC2::SecurityGroup, AWS::SageMaker::NotebookInstance).


@dataclass
class MemberStack:
    name: str
    account_id: str
    region: str
    template: dict[str, Any]
    parameters: dict[str, str]
    tags: dict[str, str]
    stack_id: str
    status: str = "CREATE_IN_PROGRESS"
    reason: str = ""
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def as_member(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "CreationTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "StackStatus": self.status,
            "Parameters": {"member": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()]},
            "Tags": {"member": [{"Key": k, "Value": v} for k, v in self.tags.items()]},
        }
        if self.reason:
            shape["StackStatusReason"] = self.reason
        if self.outputs:
            shape["Outputs"] = {"member": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}
        return shape


_member_stacks: dict[tuple[str, str, str], MemberStack] = {}  # (account, region, name) -> live stack
_deleted_stacks: list[MemberStack] = []  # DELETE_COMPLETE: still described by stack id (not by name), as AWS does


def member_stacks(account_id: str, *, deleted: bool = False) -> list[MemberStack]:
    """The account's live stacks (and, with `deleted`, its DELETE_COMPLETE ones)."""
    with _lock:
        live = [s for (account, _, _), s in _member_stacks.items() if account == account_id]
        return live + [s for s in _deleted_stacks if deleted and s.account_id == account_id]


class _StackFailed(Exception):
    pass


def _indexed(params: dict[str, Any], prefix: str, key: str, value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    n = 1
    while f"{prefix}.member.{n}.{key}" in params:
        found[str(params[f"{prefix}.member.{n}.{key}"])] = str(params.get(f"{prefix}.member.{n}.{value}", ""))
        n += 1
    return found


def _session(call: Call) -> Any:
    import boto3

    return boto3.Session(
        aws_access_key_id=call.access_key or "testing",
        aws_secret_access_key="testing",
        region_name=call.region,
    )


def _resolve(value: Any, stack: MemberStack) -> Any:
    if isinstance(value, list):
        return [_resolve(v, stack) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        pseudo = {"AWS::AccountId": stack.account_id, "AWS::Region": stack.region, "AWS::StackName": stack.name}
        return {**stack.physical, **stack.parameters, **pseudo}[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        logical, attribute = value["Fn::GetAtt"]
        return stack.attributes[logical][attribute]
    return {k: _resolve(v, stack) for k, v in value.items()}


def _parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """The stack's parameter values, checked as CloudFormation checks them (ValidationError)."""
    declared: dict[str, Any] = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise AwsError("ValidationError", f"Parameters: [{', '.join(unknown)}] do not exist in the template", 400)
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise AwsError("ValidationError", f"Parameters: [{name}] must have values", 400)
        allowed = [str(v) for v in spec.get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise AwsError("ValidationError", f"Parameter '{name}' must be one of AllowedValues", 400)
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(str(pattern), value):
            raise AwsError("ValidationError", f"Parameter '{name}' must match pattern {pattern}", 400)
        if spec.get("Type") == "Number":
            number = float(value)
            if ("MinValue" in spec and number < float(spec["MinValue"])) or (
                "MaxValue" in spec and number > float(spec["MaxValue"])
            ):
                raise AwsError("ValidationError", f"Parameter '{name}' is out of its MinValue/MaxValue range", 400)
        values[name] = value
    return values


def _create_role(session: Any, stack: MemberStack, logical: str, props: dict[str, Any]) -> None:
    iam = session.client("iam")
    name = f"{stack.name}-{logical}-{uuid.uuid4().hex[:12].upper()}"[:64]
    made = iam.create_role(
        RoleName=name,
        Path=props.get("Path", "/"),
        Description=props.get("Description", ""),
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        Tags=[{"Key": k, "Value": v} for k, v in stack.tags.items()],
    )["Role"]
    iam.get_role(RoleName=name)  # the provider waits until the role is readable
    stack.physical[logical] = name
    stack.attributes[logical] = {"Arn": made["Arn"], "RoleId": made["RoleId"]}


def _delete_role(session: Any, stack: MemberStack, logical: str) -> None:
    iam = session.client("iam")
    name = stack.physical[logical]
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


def _create_security_group(session: Any, stack: MemberStack, logical: str, props: dict[str, Any]) -> None:
    ec2 = session.client("ec2")
    name = f"{stack.name}-{logical}-{uuid.uuid4().hex[:12].upper()}"
    made = ec2.create_security_group(
        GroupName=name,
        Description=props["GroupDescription"],
        VpcId=props["VpcId"],
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in stack.tags.items()]}
        ],
    )
    ec2.describe_security_groups(GroupIds=[made["GroupId"]])
    stack.physical[logical] = made["GroupId"]
    stack.attributes[logical] = {"GroupId": made["GroupId"], "VpcId": props["VpcId"]}


def _delete_security_group(session: Any, stack: MemberStack, logical: str) -> None:
    session.client("ec2").delete_security_group(GroupId=stack.physical[logical])


def _create_notebook(session: Any, stack: MemberStack, logical: str, props: dict[str, Any]) -> None:
    sagemaker = session.client("sagemaker")
    name = f"{logical}-{uuid.uuid4().hex[:12]}"
    names = (
        "InstanceType",
        "RoleArn",
        "SubnetId",
        "SecurityGroupIds",
        "KmsKeyId",
        "DirectInternetAccess",
        "RootAccess",
    )
    arguments: dict[str, Any] = {k: props[k] for k in names if k in props}
    if "VolumeSizeInGB" in props:
        arguments["VolumeSizeInGB"] = int(props["VolumeSizeInGB"])
    made = sagemaker.create_notebook_instance(
        NotebookInstanceName=name, Tags=[{"Key": k, "Value": v} for k, v in stack.tags.items()], **arguments
    )
    sagemaker.describe_notebook_instance(NotebookInstanceName=name)
    stack.physical[logical] = made["NotebookInstanceArn"]
    stack.attributes[logical] = {"NotebookInstanceName": name}


def _delete_notebook(session: Any, stack: MemberStack, logical: str) -> None:
    sagemaker = session.client("sagemaker")
    name = stack.attributes[logical]["NotebookInstanceName"]
    if sagemaker.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "InService":
        sagemaker.stop_notebook_instance(NotebookInstanceName=name)
    sagemaker.delete_notebook_instance(NotebookInstanceName=name)


_PROVIDERS: dict[str, tuple[Any, Any]] = {
    "AWS::IAM::Role": (_create_role, _delete_role),
    "AWS::EC2::SecurityGroup": (_create_security_group, _delete_security_group),
    "AWS::SageMaker::NotebookInstance": (_create_notebook, _delete_notebook),
}


def _order(resources: dict[str, Any]) -> list[str]:
    """Dependency order (Ref/GetAtt between resources), as CloudFormation creates them."""

    def refs(value: Any) -> set[str]:
        if isinstance(value, list):
            return set().union(*(refs(v) for v in value)) if value else set()
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return {value["Ref"]} & set(resources)
            if set(value) == {"Fn::GetAtt"}:
                return {value["Fn::GetAtt"][0]}
            return set().union(*(refs(v) for v in value.values())) if value else set()
        return set()

    done: list[str] = []
    while len(done) < len(resources):
        ready = [n for n in resources if n not in done and refs(resources[n].get("Properties", {})) <= set(done)]
        if not ready:
            raise AwsError("ValidationError", "Circular dependency between resources", 400)
        done.extend(sorted(ready))
    return done


def _delete_resources(session: Any, stack: MemberStack) -> None:
    resources = stack.template["Resources"]
    for logical in reversed(_order(resources)):
        if logical in stack.physical:
            _PROVIDERS[resources[logical]["Type"]][1](session, stack, logical)
            del stack.physical[logical]


def _member_stack(call: Call, wanted: str) -> MemberStack | None:
    with _lock:
        for (account, region, name), stack in _member_stacks.items():
            if (account, region) == (call.account_id, call.region) and wanted in (name, stack.stack_id):
                return stack
        for stack in _deleted_stacks:
            if (stack.account_id, stack.region, stack.stack_id) == (call.account_id, call.region, wanted):
                return stack
    return None


@emulate(SERVICE, "CreateStack")
def create_stack(call: Call) -> tuple[int, dict[str, str], bytes] | None:
    from mlplane_sandbox.template import parse_template

    name = str(call.params.get("StackName", ""))
    body = call.params.get("TemplateBody")
    if body is None:
        return None  # only template bodies are emulated (Service Catalog passes its copy of the template)
    if _member_stack(call, name) is not None:
        raise AwsError("AlreadyExistsException", f"Stack [{name}] already exists", 400)
    template = parse_template(str(body))
    unknown = sorted({r["Type"] for r in template["Resources"].values()} - set(_PROVIDERS))
    if unknown:
        raise AwsError("ValidationError", f"Template format error: Unrecognized resource types: {unknown}", 400)
    parameters = _parameters(template, _indexed(call.params, "Parameters", "ParameterKey", "ParameterValue"))
    stack_id = f"arn:aws:cloudformation:{call.region}:{call.account_id}:stack/{name}/{uuid.uuid4()}"
    stack = MemberStack(
        name,
        call.account_id,
        call.region,
        template,
        parameters,
        _indexed(call.params, "Tags", "Key", "Value"),
        stack_id,
    )
    with _lock:
        _member_stacks[(call.account_id, call.region, name)] = stack
    session = _session(call)
    try:
        for logical in _order(template["Resources"]):
            resource = template["Resources"][logical]
            _PROVIDERS[resource["Type"]][0](session, stack, logical, _resolve(resource.get("Properties", {}), stack))
        stack.outputs = {k: str(_resolve(v["Value"], stack)) for k, v in template.get("Outputs", {}).items()}
        stack.status = "CREATE_COMPLETE"
    except Exception as err:  # a provider's call failed: CloudFormation rolls the stack back
        stack.reason = f"The following resource(s) failed to create: {err}"
        try:
            _delete_resources(session, stack)
            stack.status = "ROLLBACK_COMPLETE"
        except Exception as undo_err:
            stack.status = "ROLLBACK_FAILED"
            stack.reason += f"; rollback: {undo_err}"
    return _xml("CreateStack", {"StackId": stack_id})


@emulate(SERVICE, "DeleteStack")
def delete_stack(call: Call) -> tuple[int, dict[str, str], bytes] | None:
    stack = _member_stack(call, str(call.params.get("StackName", "")))
    if stack is None or stack.status == "DELETE_COMPLETE":
        return _xml("DeleteStack", None)  # CloudFormation answers success for a stack it does not have
    try:
        _delete_resources(_session(call), stack)
    except Exception as err:
        stack.status = "DELETE_FAILED"
        stack.reason = f"The following resource(s) failed to delete: {err}"
        return _xml("DeleteStack", None)
    stack.status = "DELETE_COMPLETE"
    with _lock:
        _member_stacks.pop((stack.account_id, stack.region, stack.name), None)
        _deleted_stacks.append(stack)
    return _xml("DeleteStack", None)
