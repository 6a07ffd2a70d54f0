"""What an IAM policy evaluation needs to know about one call: the resources it acts on, and their keys.

moto enforces no session policy, so tests/contract/test_least_privilege.py evaluates the member session policy
against the record (`mlplane_sandbox.policy_eval`). Action names alone cannot show that a scoped policy allows a
call: that needs the ARN of each resource the call acts on and the condition keys AWS would put in the request
context, read from moto's backends *before* the call changes them (a DeleteVpc is authorised against the tags
the VPC had, not against a VPC that is gone).

The tables below follow the Service Authorization Reference ("Actions, resources, and condition keys for Amazon
EC2 / AWS Identity and Access Management / AWS Key Management Service"; its data as parliament ships it in
`iam_definition.json`): per action the resource types it authorises against, their ARN formats, and the keys.
They cover the actions mlplane's member session policy scopes by resource or condition; any other call is
recorded with no resources, which a test evaluates as `Resource: "*"` only. Creating resources with
TagSpecifications (EC2), Tags (IAM, KMS, Secrets Manager) also authorises the tagging action: `implied` records
those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from mlplane_sandbox.rules import Call

PARTITION = "aws"

Keys = dict[str, tuple[str, ...]]
"""Condition keys of a request or a resource: key -> its values (one for a single-valued key)."""


@dataclass(frozen=True)
class Resource:
    """One resource a call is authorised against: its ARN, and its condition keys at call time."""

    arn: str
    keys: Keys = field(default_factory=dict)  # aws:ResourceTag/<key>, kms:ResourceAliases
    exists: bool = True  # False: the call names a resource the account does not have (tags unknown)


@dataclass(frozen=True)
class Authorization:
    """One action IAM evaluates for a call: the call's own, or one it implies (tag on create)."""

    action: str
    resources: tuple[Resource, ...] = ()  # () = not described: only `Resource: "*"` allows it
    context: Keys = field(default_factory=dict)  # request keys: iam:PolicyARN, ec2:CreateAction, ...


def describe(call: Call, action: str) -> tuple[Authorization, ...]:
    """The authorisations `call` (a member-account call, `action` = service:Operation) needs, in AWS's terms."""
    describer = _DESCRIBERS.get(action)
    primary = describer(call) if describer is not None else Authorization(action)
    return (primary, *_implied(call, action))


# -- EC2 ----------------------------------------------------------------------------------------------------------
def _ec2(call: Call) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[call.account_id][call.region]


def _ec2_resource(call: Call, kind: str, resource_id: str, *, known: bool | None = None) -> Resource:
    """arn:aws:ec2:REGION:ACCOUNT:KIND/ID with the resource's tags as aws:ResourceTag/<key>."""
    backend = _ec2(call)
    tags: dict[str, str] = dict(backend.tags.get(resource_id, {}))
    exists = known if known is not None else _ec2_exists(backend, kind, resource_id)
    arn = f"arn:{PARTITION}:ec2:{call.region}:{call.account_id}:{kind}/{resource_id}"
    return Resource(arn, {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}, exists)


# Where moto keeps each resource type (EC2 backend attribute; subnets are kept per availability zone).
_EC2_COLLECTIONS = {
    "vpc": "vpcs",
    "route-table": "route_tables",
    "internet-gateway": "internet_gateways",
    "natgateway": "nat_gateways",
    "vpc-endpoint": "vpc_end_points",
    "transit-gateway-attachment": "transit_gateway_attachments",
}


def _ec2_exists(backend: Any, kind: str, resource_id: str) -> bool:
    if kind == "subnet":
        return any(resource_id in by_az for by_az in backend.subnets.values())
    if kind == "elastic-ip":
        return any(address.allocation_id == resource_id for address in backend.addresses)
    if kind not in _EC2_COLLECTIONS:
        raise ValueError(f"no existence check for EC2 resource type {kind}")
    return resource_id in getattr(backend, _EC2_COLLECTIONS[kind])


def _list_param(params: dict[str, Any], name: str) -> list[str]:
    """A list parameter of EC2's query protocol (`Name.1`, `Name.2`, ...), in order."""
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)$")
    found = sorted((int(m.group(1)), str(v)) for k, v in params.items() if (m := pattern.match(k)))
    return [value for _, value in found]


def _on(*parameters: tuple[str, str]) -> Callable[[Call], tuple[Resource, ...]]:
    """Resources named by request parameters: (parameter, resource type), each optional unless present."""

    def resources(call: Call) -> tuple[Resource, ...]:
        found: list[Resource] = []
        for parameter, kind in parameters:
            values = _list_param(call.params, parameter) or (
                [str(call.params[parameter])] if parameter in call.params else []
            )
            found.extend(_ec2_resource(call, kind, value) for value in values)
        return tuple(found)

    return resources


def _route_table_association(call: Call) -> tuple[Resource, ...]:
    """DisassociateRouteTable names an association: the route table holding it and the subnet it links."""
    association = str(call.params.get("AssociationId", ""))
    for table in _ec2(call).route_tables.values():
        target = table._associations.get(association)  # moto keeps them only there
        if target is not None:
            linked = (_ec2_resource(call, "subnet", target),) if str(target).startswith("subnet-") else ()
            return (_ec2_resource(call, "route-table", table.id), *linked)
    return (_ec2_resource(call, "route-table", f"(association {association})", known=False),)


def _cidr_association(call: Call) -> tuple[Resource, ...]:
    """DisassociateVpcCidrBlock names a CIDR association: the VPC holding it."""
    association = str(call.params.get("AssociationId", ""))
    for vpc in _ec2(call).vpcs.values():
        if association in vpc._cidr_block_association_set:  # moto keeps them only there
            return (_ec2_resource(call, "vpc", vpc.id),)
    return (_ec2_resource(call, "vpc", f"(association {association})", known=False),)


_EC2_RESOURCES: dict[str, Callable[[Call], tuple[Resource, ...]]] = {
    "AssociateRouteTable": _on(("RouteTableId", "route-table"), ("SubnetId", "subnet")),
    "AssociateVpcCidrBlock": _on(("VpcId", "vpc")),
    "AttachInternetGateway": _on(("InternetGatewayId", "internet-gateway"), ("VpcId", "vpc")),
    "CreateRoute": _on(("RouteTableId", "route-table")),
    "DeleteInternetGateway": _on(("InternetGatewayId", "internet-gateway")),
    "DeleteNatGateway": _on(("NatGatewayId", "natgateway")),
    "DeleteRoute": _on(("RouteTableId", "route-table")),
    "DeleteRouteTable": _on(("RouteTableId", "route-table")),
    "DeleteSubnet": _on(("SubnetId", "subnet")),
    "DeleteTransitGatewayVpcAttachment": _on(("TransitGatewayAttachmentId", "transit-gateway-attachment")),
    "DeleteVpc": _on(("VpcId", "vpc")),
    "DeleteVpcEndpoints": _on(("VpcEndpointId", "vpc-endpoint")),
    "DetachInternetGateway": _on(("InternetGatewayId", "internet-gateway"), ("VpcId", "vpc")),
    "DisassociateRouteTable": _route_table_association,
    "DisassociateVpcCidrBlock": _cidr_association,
    "ModifyVpcAttribute": _on(("VpcId", "vpc")),
    "ModifyVpcEndpoint": _on(
        ("VpcEndpointId", "vpc-endpoint"), ("AddRouteTableId", "route-table"), ("RemoveRouteTableId", "route-table")
    ),
    "ReleaseAddress": _on(("AllocationId", "elastic-ip")),
    "ReplaceRoute": _on(("RouteTableId", "route-table")),
}


# EC2 ids by prefix -> the resource type of their ARN (what CreateTags / DeleteTags name in `Resources`).
_EC2_ID_KINDS = {
    "vpc-": "vpc",
    "subnet-": "subnet",
    "rtb-": "route-table",
    "igw-": "internet-gateway",
    "nat-": "natgateway",
    "vpce-": "vpc-endpoint",
    "eipalloc-": "elastic-ip",
    "tgw-attach-": "transit-gateway-attachment",
}


def _tag_keys(tags: dict[str, str], *, request_tags: bool) -> Keys:
    """aws:TagKeys (every key the request names) and, for a tagging request, aws:RequestTag/<key>."""
    keys: Keys = {"aws:TagKeys": tuple(sorted(tags))} if tags else {}
    if request_tags:
        keys.update({f"aws:RequestTag/{k}": (v,) for k, v in tags.items()})
    return keys


def _ec2_tagging(operation: str) -> Callable[[Call], Authorization]:
    """CreateTags / DeleteTags: authorised on each resource named (its type by id prefix, with its tags), with
    the request's tag keys (EC2 query protocol: `Resources.N`, `Tag.N.Key`, `Tag.N.Value`)."""

    def authorization(call: Call) -> Authorization:
        resources = []
        for resource_id in _list_param(call.params, "ResourceId") or _list_param(call.params, "Resources"):
            kind = next((k for prefix, k in _EC2_ID_KINDS.items() if resource_id.startswith(prefix)), None)
            if kind is None:
                raise ValueError(f"no ARN type for EC2 id {resource_id} ({operation})")
            resources.append(_ec2_resource(call, kind, resource_id))
        pattern = re.compile(r"^Tag\.(\d+)\.Key$")
        tags = {
            str(key): str(call.params.get(f"Tag.{m.group(1)}.Value", ""))
            for name, key in call.params.items()
            if (m := pattern.match(name))
        }
        context = _tag_keys(tags, request_tags=operation == "CreateTags")
        return Authorization(f"ec2:{operation}", tuple(resources), context)

    return authorization


def _ec2_describer(operation: str) -> Callable[[Call], Authorization]:
    find = _EC2_RESOURCES[operation]
    return lambda call: Authorization(f"ec2:{operation}", find(call))


def tag_specifications(params: dict[str, Any]) -> dict[str, str]:
    """The tags an EC2 create asks for, from its `TagSpecification(s).N.Tag.M` query parameters."""
    # CreateTransitGatewayVpcAttachment's model has no locationName for it: `TagSpecifications.N` there.
    tags: dict[str, str] = {}
    pattern = re.compile(r"^(TagSpecifications?)\.(\d+)\.Tag\.(\d+)\.Key$")
    for name, key in params.items():
        match = pattern.match(name)
        if match:
            prefix, spec, index = match.groups()
            tags[str(key)] = str(params.get(f"{prefix}.{spec}.Tag.{index}.Value", ""))
    return tags


# -- IAM ----------------------------------------------------------------------------------------------------------
def _iam(call: Call) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[call.account_id]["global"]


def _user(call: Call) -> Resource:
    name = str(call.params.get("UserName", ""))
    user = _iam(call).users.get(name)
    path = str(call.params.get("Path", "/")) if user is None else str(user.path)
    return Resource(f"arn:{PARTITION}:iam::{call.account_id}:user{path}{name}", exists=user is not None)


def _policy(call: Call) -> Resource:
    arn = str(call.params.get("PolicyArn", ""))
    if not arn:  # CreatePolicy: the ARN it will have
        path = str(call.params.get("Path", "/"))
        arn = f"arn:{PARTITION}:iam::{call.account_id}:policy{path}{call.params.get('PolicyName', '')}"
    return Resource(arn, exists=arn in _iam(call).managed_policies)


def _role(call: Call) -> Resource:
    """arn:aws:iam::ACCOUNT:role/NAME with the role's tags (aws:ResourceTag/<key>) at call time."""
    name = str(call.params.get("RoleName", ""))
    role = next((r for r in _iam(call).roles.values() if r.name == name), None)
    if role is None:  # CreateRole: the ARN it will have (its Path, if any)
        path = str(call.params.get("Path", "/"))
        return Resource(f"arn:{PARTITION}:iam::{call.account_id}:role{path}{name}", exists=False)
    listed = list(role.tags.values()) if isinstance(role.tags, dict) else list(role.tags or [])
    tags = {str(t["Key"]): str(t["Value"]) for t in listed}
    keys: Keys = {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}
    return Resource(f"arn:{PARTITION}:iam::{call.account_id}:role{role.path}{name}", keys)


def _role_call(operation: str) -> Callable[[Call], Authorization]:
    """A call on a role: its tags as resource keys; a create's or a tagging's tags as aws:RequestTag/<key>;
    Attach/DetachRolePolicy's policy as iam:PolicyARN."""

    def authorization(call: Call) -> Authorization:
        context: Keys = {
            f"aws:RequestTag/{k}": (v,) for k, v in _tags_param(call.params, "Tags", "Key", "Value").items()
        }
        if "PolicyArn" in call.params:
            context["iam:PolicyARN"] = (str(call.params["PolicyArn"]),)
        return Authorization(f"iam:{operation}", (_role(call),), context)

    return authorization


def _on_iam(operation: str, resource: Callable[[Call], Resource]) -> Callable[[Call], Authorization]:
    return lambda call: Authorization(f"iam:{operation}", (resource(call),), _iam_tag_keys(operation, call))


def _iam_tag_keys(operation: str, call: Call) -> Keys:
    """Tag* / Untag* of a user or policy: aws:TagKeys (and aws:RequestTag/<key> for Tag*)."""
    if operation.startswith("Tag"):
        return _tag_keys(_tags_param(call.params, "Tags", "Key", "Value"), request_tags=True)
    if operation.startswith("Untag"):
        return _tag_keys(dict.fromkeys(_query_list(call.params, "TagKeys"), ""), request_tags=False)
    return {}


def _query_list(params: dict[str, Any], name: str) -> list[str]:
    """A list parameter of IAM's query protocol (`Name.member.N`), or a JSON list (KMS)."""
    listed = params.get(name)
    if isinstance(listed, list):
        return [str(v) for v in listed]
    pattern = re.compile(rf"^{re.escape(name)}\.member\.(\d+)$")
    found = [(int(m.group(1)), str(v)) for k, v in params.items() if (m := pattern.match(k))]
    return [value for _, value in sorted(found)]


def _user_policy(operation: str) -> Callable[[Call], Authorization]:
    """Attach/DetachUserPolicy: authorised on the user; the policy is the request's iam:PolicyARN."""
    return lambda call: Authorization(
        f"iam:{operation}", (_user(call),), {"iam:PolicyARN": (str(call.params.get("PolicyArn", "")),)}
    )


def _tags_param(params: dict[str, Any], prefix: str, key: str, value: str) -> dict[str, str]:
    """Tags of IAM's query protocol (`Tags.member.N.Key`) or KMS's JSON (`Tags: [{TagKey, TagValue}]`)."""
    listed = params.get(prefix)
    if isinstance(listed, list):
        return {str(t.get(key, "")): str(t.get(value, "")) for t in listed if isinstance(t, dict)}
    pattern = re.compile(rf"^{re.escape(prefix)}\.member\.(\d+)\.{key}$")
    return {
        str(name): str(params.get(f"{prefix}.member.{m.group(1)}.{value}", ""))
        for k, name in params.items()
        if (m := pattern.match(k))
    }


# -- KMS ----------------------------------------------------------------------------------------------------------
def _kms(call: Call) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[call.account_id][call.region]


def _key(call: Call, key_id: str) -> Resource:
    """The key `key_id` names (id, ARN, alias or alias ARN) with its tags and its aliases (kms:ResourceAliases)."""
    backend = _kms(call)
    try:
        raw = str(backend.any_id_to_key_id(key_id))
    except Exception:  # an alias naming no key
        raw = ""
    key = backend.keys.get(raw)
    arn = f"arn:{PARTITION}:kms:{call.region}:{call.account_id}:key/{raw or key_id}"
    if key is None:
        return Resource(arn, exists=False)
    tags = {t["TagKey"]: t["TagValue"] for t in backend.list_resource_tags(raw).get("Tags", [])}
    keys: Keys = {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}
    if key.aliases:
        keys["kms:ResourceAliases"] = tuple(sorted(key.aliases))
    return Resource(arn, keys)


def _alias(call: Call, name: str) -> Resource:
    return Resource(f"arn:{PARTITION}:kms:{call.region}:{call.account_id}:{name}")


def _on_key(operation: str) -> Callable[[Call], Authorization]:
    def authorization(call: Call) -> Authorization:
        context: Keys = {}
        if operation == "TagResource":
            context = _tag_keys(_tags_param(call.params, "Tags", "TagKey", "TagValue"), request_tags=True)
        elif operation == "UntagResource":
            context = _tag_keys(dict.fromkeys(_query_list(call.params, "TagKeys"), ""), request_tags=False)
        return Authorization(f"kms:{operation}", (_key(call, str(call.params.get("KeyId", ""))),), context)

    return authorization


def _alias_and_key(operation: str) -> Callable[[Call], Authorization]:
    """CreateAlias / DeleteAlias are authorised on the alias and on the key it names (TargetKeyId, or today's)."""

    def authorization(call: Call) -> Authorization:
        alias = str(call.params.get("AliasName", ""))
        target = str(call.params.get("TargetKeyId", "")) or alias
        return Authorization(f"kms:{operation}", (_alias(call, alias), _key(call, target)))

    return authorization


# -- Secrets Manager ----------------------------------------------------------------------------------------------
def _secret(call: Call) -> Resource:
    """The secret a call names (SecretId: name or ARN; CreateSecret: Name) as IAM authorises it: its ARN, which
    ends in `-` and six random characters Secrets Manager adds to the name. For a secret that does not exist yet
    (CreateSecret) the six are not known before the call: `??????` stands for them, so only a policy ARN ending in
    a wildcard for them (as AWS's examples write it, `-??????` or `*`) allows it."""
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[call.account_id][call.region]
    named = str(call.params.get("SecretId") or call.params.get("Name") or "")
    for secret in backend.secrets.values():
        if named in (secret.name, secret.arn):
            return Resource(str(secret.arn), {f"aws:ResourceTag/{t['Key']}": (t["Value"],) for t in secret.tags or []})
    return Resource(
        f"arn:{PARTITION}:secretsmanager:{call.region}:{call.account_id}:secret:{named}-??????", exists=False
    )


def _on_secret(operation: str) -> Callable[[Call], Authorization]:
    return lambda call: Authorization(f"secretsmanager:{operation}", (_secret(call),))


# -- a Service Catalog launch's calls, as its launch role (mlplane_sandbox.emulators.service_catalog) -------------
def _security_group(call: Call, group_id: str) -> Resource:
    backend = _ec2(call)
    exists = any(group_id in groups for groups in backend.groups.values())
    tags = dict(backend.tags.get(group_id, {}))
    arn = f"arn:{PARTITION}:ec2:{call.region}:{call.account_id}:security-group/{group_id}"
    return Resource(arn, {f"aws:ResourceTag/{k}": (v,) for k, v in tags.items()}, exists)


def _create_security_group(call: Call) -> Authorization:
    vpc = _ec2_resource(call, "vpc", str(call.params.get("VpcId", "")))
    new = Resource(f"arn:{PARTITION}:ec2:{call.region}:{call.account_id}:security-group/(new)", exists=False)
    return Authorization("ec2:CreateSecurityGroup", (vpc, new))


def _notebook(call: Call) -> Resource:
    from moto.sagemaker.models import sagemaker_backends

    name = str(call.params.get("NotebookInstanceName", ""))
    found = sagemaker_backends[call.account_id][call.region].notebook_instances.get(name)
    arn = f"arn:{PARTITION}:sagemaker:{call.region}:{call.account_id}:notebook-instance/{name.lower()}"
    if found is None:
        return Resource(arn, exists=False)
    return Resource(arn, {f"aws:ResourceTag/{t['Key']}": (t["Value"],) for t in found.tags})


def _create_notebook(call: Call) -> Authorization:
    """CreateNotebookInstance with SageMaker's condition keys for it (Service Authorization Reference)."""
    p = call.params
    context: Keys = {
        "sagemaker:DirectInternetAccess": (str(p.get("DirectInternetAccess", "Enabled")),),
        "sagemaker:RootAccess": (str(p.get("RootAccess", "Enabled")),),
        "sagemaker:InstanceTypes": (str(p.get("InstanceType", "")),),
    }
    if p.get("KmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = (str(p["KmsKeyId"]),)
    if p.get("SubnetId"):
        context["sagemaker:VpcSubnets"] = (str(p["SubnetId"]),)
    if p.get("SecurityGroupIds"):
        context["sagemaker:VpcSecurityGroupIds"] = tuple(str(g) for g in p["SecurityGroupIds"])
    return Authorization("sagemaker:CreateNotebookInstance", (_notebook(call),), context)


def _on_notebook(operation: str) -> Callable[[Call], Authorization]:
    return lambda call: Authorization(f"sagemaker:{operation}", (_notebook(call),))


def _stack(call: Call) -> Resource:
    from mlplane_sandbox.emulators.cloudformation import member_stacks

    name = str(call.params.get("StackName", ""))
    found = next((s for s in member_stacks(call.account_id, deleted=True) if name in (s.name, s.stack_id)), None)
    if found is None:
        arn = f"arn:{PARTITION}:cloudformation:{call.region}:{call.account_id}:stack/{name}/(new)"
        return Resource(arn, exists=False)
    return Resource(found.stack_id)


def _on_stack(operation: str) -> Callable[[Call], Authorization]:
    return lambda call: Authorization(f"cloudformation:{operation}", (_stack(call),))


def _notebook_implied(call: Call) -> tuple[Authorization, ...]:
    """What CreateNotebookInstance also needs of its caller (SageMaker API permissions reference): pass the
    execution role to SageMaker, a grant on the volume's key, the interface SageMaker creates in the subnet."""
    p = call.params
    where = f"{call.region}:{call.account_id}"
    interface = Resource(f"arn:{PARTITION}:ec2:{where}:network-interface/(by SageMaker)", exists=False)
    role = str(p.get("RoleArn", ""))
    found: list[Authorization] = [
        Authorization("iam:PassRole", (Resource(role),), {"iam:PassedToService": ("sagemaker.amazonaws.com",)})
    ]
    if p.get("KmsKeyId"):
        found.append(
            Authorization(
                "kms:CreateGrant",
                (_key(call, str(p["KmsKeyId"])),),
                {"kms:GrantIsForAWSResource": ("true",)},
            )
        )
    if p.get("SubnetId"):
        groups = [_security_group(call, str(g)) for g in p.get("SecurityGroupIds", [])]
        found.extend(
            [
                Authorization(
                    "ec2:CreateNetworkInterface",
                    (_ec2_resource(call, "subnet", str(p["SubnetId"])), *groups, interface),
                ),
                Authorization("ec2:AttachNetworkInterface", (interface,)),
                Authorization("ec2:ModifyNetworkInterfaceAttribute", (interface,)),
                *(
                    Authorization(f"ec2:{read}")
                    for read in (
                        "DescribeAvailabilityZones",
                        "DescribeInternetGateways",
                        "DescribeSecurityGroups",
                        "DescribeSubnets",
                        "DescribeVpcs",
                    )
                ),
            ]
        )
    if p.get("Tags"):
        found.append(Authorization("sagemaker:AddTags", (_notebook(call),)))
    return tuple(found)


def _s3_path(call: Call) -> tuple[str, str]:
    """The bucket and key of an S3 request: virtual-hosted (`bucket.s3.<region>.amazonaws.com/key`) or path
    style (`s3.<region>.amazonaws.com/bucket/key`)."""
    host = str(call.params.get("__host", ""))
    path = unquote(str(call.params.get("__path", ""))).lstrip("/")
    if ".s3." in f".{host}" and not host.startswith("s3."):
        return host.split(".s3.", 1)[0], path
    bucket, _, key = path.partition("/")
    return bucket, key


def _bucket(call: Call) -> Resource:
    return Resource(f"arn:{PARTITION}:s3:::{_s3_path(call)[0]}")


def _object(call: Call) -> Resource:
    bucket, key = _s3_path(call)
    return Resource(f"arn:{PARTITION}:s3:::{bucket}/{key}")


def _on_s3(action: str, resource: Callable[[Call], Resource]) -> Callable[[Call], Authorization]:
    return lambda call: Authorization(action, (resource(call),))


# S3 (Service Authorization Reference, Amazon S3): bucket actions on the bucket ARN, object actions on the object
# ARN; the API's PutPublicAccessBlock is the action s3:PutBucketPublicAccessBlock.
_S3_ACTIONS = {
    "CreateBucket": ("s3:CreateBucket", _bucket),
    "DeleteBucket": ("s3:DeleteBucket", _bucket),
    "GetBucketTagging": ("s3:GetBucketTagging", _bucket),
    "PutBucketTagging": ("s3:PutBucketTagging", _bucket),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", _bucket),
    "GetObject": ("s3:GetObject", _object),
    "PutObject": ("s3:PutObject", _object),
    "DeleteObject": ("s3:DeleteObject", _object),
}


_DESCRIBERS: dict[str, Callable[[Call], Authorization]] = {
    **{f"s3:{operation}": _on_s3(action, resource) for operation, (action, resource) in _S3_ACTIONS.items()},
    **{
        f"secretsmanager:{operation}": _on_secret(operation)
        for operation in (
            "CreateSecret",
            "DeleteSecret",
            "DescribeSecret",
            "GetResourcePolicy",
            "PutResourcePolicy",
            "TagResource",
            "GetSecretValue",
        )
    },
    **{f"ec2:{operation}": _ec2_describer(operation) for operation in _EC2_RESOURCES},
    **{
        f"iam:{operation}": _on_iam(operation, _user)
        for operation in (
            "CreateUser",
            "DeleteUser",
            "TagUser",
            "UntagUser",
            "CreateAccessKey",
            "DeleteAccessKey",
            "ListAccessKeys",
        )
    },
    **{
        f"iam:{operation}": _role_call(operation)
        for operation in (
            "GetRole",
            "GetRolePolicy",
            "ListAttachedRolePolicies",
            "ListInstanceProfilesForRole",
            "ListRolePolicies",
            "ListRoleTags",
            "CreateRole",
            "DeleteRole",
            "UpdateAssumeRolePolicy",
            "TagRole",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
        )
    },
    "iam:AttachUserPolicy": _user_policy("AttachUserPolicy"),
    "iam:DetachUserPolicy": _user_policy("DetachUserPolicy"),
    **{
        f"iam:{operation}": _on_iam(operation, _policy)
        for operation in (
            "GetPolicy",
            "CreatePolicy",
            "CreatePolicyVersion",
            "DeletePolicy",
            "DeletePolicyVersion",
            "SetDefaultPolicyVersion",
            "TagPolicy",
            "UntagPolicy",
        )
    },
    "kms:PutKeyPolicy": _on_key("PutKeyPolicy"),
    "kms:ScheduleKeyDeletion": _on_key("ScheduleKeyDeletion"),
    "kms:EnableKeyRotation": _on_key("EnableKeyRotation"),
    "kms:TagResource": _on_key("TagResource"),
    "kms:UntagResource": _on_key("UntagResource"),
    "ec2:CreateTags": _ec2_tagging("CreateTags"),
    "ec2:DeleteTags": _ec2_tagging("DeleteTags"),
    "kms:CreateAlias": _alias_and_key("CreateAlias"),
    "kms:DeleteAlias": _alias_and_key("DeleteAlias"),
    "ec2:CreateSecurityGroup": _create_security_group,
    "ec2:DeleteSecurityGroup": lambda call: Authorization(
        "ec2:DeleteSecurityGroup", (_security_group(call, str(call.params.get("GroupId", ""))),)
    ),
    "sagemaker:CreateNotebookInstance": _create_notebook,
    **{
        f"sagemaker:{operation}": _on_notebook(operation)
        for operation in ("DescribeNotebookInstance", "StopNotebookInstance", "DeleteNotebookInstance")
    },
    **{
        f"cloudformation:{operation}": _on_stack(operation)
        for operation in ("CreateStack", "DeleteStack", "DescribeStacks")
    },
}


def _catalog_implied(call: Call, action: str) -> tuple[Authorization, ...]:
    """What the Service Catalog module's calls also need of their caller (M2)."""
    if action == "sagemaker:CreateNotebookInstance":
        return _notebook_implied(call)
    if call.params.get("Type") == "LAUNCH":
        # Creating a launch constraint passes its role to Service Catalog (the Service Catalog administrator
        # guide, "Launch constraints": to assign a role one needs iam:PassRole).
        role = str(json.loads(str(call.params.get("Parameters", "{}"))).get("RoleArn", ""))
        return (
            Authorization(
                "iam:PassRole", (Resource(role),), {"iam:PassedToService": ("servicecatalog.amazonaws.com",)}
            ),
        )
    return ()


def _implied(call: Call, action: str) -> tuple[Authorization, ...]:
    """Tag on create: a create with tags is also authorised as the tagging action.

    EC2: "To tag a resource on creation, you need ec2:CreateTags" with ec2:CreateAction = the create action
    (EC2 user guide, "Grant permission to tag Amazon EC2 resources during creation"); KMS CreateKey with Tags
    needs kms:TagResource; IAM CreateUser / CreatePolicy with Tags need iam:TagUser / iam:TagPolicy.
    """
    service, _, operation = action.partition(":")
    if service == "ec2" and tag_specifications(call.params):
        return (Authorization("ec2:CreateTags", context={"ec2:CreateAction": (operation,)}),)
    if action == "kms:CreateKey" and _tags_param(call.params, "Tags", "TagKey", "TagValue"):
        return (Authorization("kms:TagResource"),)
    if action == "secretsmanager:CreateSecret" and call.params.get("Tags"):
        # CreateSecret with Tags also needs secretsmanager:TagResource (Secrets Manager API reference, CreateSecret)
        return (Authorization("secretsmanager:TagResource", _DESCRIBERS[action](call).resources),)
    if action in ("sagemaker:CreateNotebookInstance", "servicecatalog:CreateConstraint"):
        return _catalog_implied(call, action)
    if action in ("iam:CreateUser", "iam:CreatePolicy", "iam:CreateRole") and _tags_param(
        call.params, "Tags", "Key", "Value"
    ):
        tag = {"iam:CreateUser": "iam:TagUser", "iam:CreatePolicy": "iam:TagPolicy", "iam:CreateRole": "iam:TagRole"}[
            action
        ]
        described = _DESCRIBERS[action](call)
        return (Authorization(tag, described.resources, described.context),)
    return ()


# -- the hub: what an operator's CLI calls there (the stack's OperatorPolicy) ---------------------------------------
def describe_hub(call: Call, action: str) -> tuple[Authorization, ...]:
    """The authorisation a hub-account call needs: the stack's resource it acts on, named as IAM names it.
    Organizations' reads are left undescribed (their policy allows `Resource: "*"`)."""
    describer = _HUB_DESCRIBERS.get(action)
    return (describer(call) if describer is not None else Authorization(action),)


def _hub_stack(call: Call) -> Authorization:
    from mlplane_sandbox.emulators.cloudformation import hub_stack_id

    name = str(call.params.get("StackName", ""))
    arn = hub_stack_id(call.account_id, call.region, name)
    action = f"cloudformation:{call.operation}"
    if arn is None:
        return Authorization(
            action,
            (Resource(f"arn:{PARTITION}:cloudformation:{call.region}:{call.account_id}:stack/{name}/*", exists=False),),
        )
    return Authorization(action, (Resource(arn),))


def _by_param(service: str, param: str) -> Callable[[Call], Authorization]:
    """The call's own ARN parameter (Step Functions' stateMachineArn / executionArn, STS's RoleArn)."""
    return lambda call: Authorization(f"{service}:{call.operation}", (Resource(str(call.params.get(param, ""))),))


def _table(call: Call) -> Authorization:
    """The table, or the index a Query or Scan names (IAM authorises table/T/index/I, not the table)."""
    arn = f"arn:{PARTITION}:dynamodb:{call.region}:{call.account_id}:table/{call.params.get('TableName', '')}"
    if call.params.get("IndexName"):
        arn += f"/index/{call.params['IndexName']}"
    return Authorization(f"dynamodb:{call.operation}", (Resource(arn),))


def _function(call: Call) -> Authorization:
    """FunctionName, in the request's path (/2015-03-31/functions/{FunctionName}/configuration): a name, a
    partial or a full ARN (the Lambda API reference)."""
    path = str(call.params.get("__path", ""))
    name = unquote(path.split("/functions/", 1)[1].split("/", 1)[0]) if "/functions/" in path else ""
    arn = name if name.startswith("arn:") else f"arn:{PARTITION}:lambda:{call.region}:{call.account_id}:function:{name}"
    return Authorization(f"lambda:{call.operation}", (Resource(arn),))


def _assume_role(call: Call) -> Authorization:
    """sts:AssumeRole of a role: its account's organization (aws:ResourceOrgID) and the caller's
    (aws:PrincipalOrgID), from moto's organization of the management account."""
    from moto.organizations.models import organizations_backends

    role = str(call.params.get("RoleArn", ""))
    role_account = role.split(":")[4] if role.count(":") >= 5 else ""
    org_of: dict[str, str] = {}
    for backend in organizations_backends.get(call.account_id, {}).values():
        if backend.org is not None:
            org_of.update({account.id: backend.org.id for account in backend.accounts})
    keys: Keys = {"aws:ResourceOrgID": (org_of[role_account],)} if role_account in org_of else {}
    context: Keys = {"aws:PrincipalOrgID": (org_of[call.account_id],)} if call.account_id in org_of else {}
    return Authorization("sts:AssumeRole", (Resource(role, keys),), context)


_HUB_DESCRIBERS: dict[str, Callable[[Call], Authorization]] = {
    "cloudformation:DescribeStacks": _hub_stack,
    "cloudformation:DescribeStackResource": _hub_stack,
    "lambda:GetFunctionConfiguration": _function,
    "states:StartExecution": _by_param("states", "stateMachineArn"),
    "states:DescribeStateMachine": _by_param("states", "stateMachineArn"),
    "states:DescribeExecution": _by_param("states", "executionArn"),
    "states:GetExecutionHistory": _by_param("states", "executionArn"),
    **{f"dynamodb:{operation}": _table for operation in ("GetItem", "Query", "Scan")},
    "sts:AssumeRole": _assume_role,
}
