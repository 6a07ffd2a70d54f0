"""M1, SageMaker Canvas large data processing (seed 001).

Creates the EMR Serverless execution role Canvas runs its remote jobs with
(`AmazonSageMakerCanvasEMRSExecutionAccess-<suffix>`: the seed's trust policy, the AWS managed policy
`AmazonSageMakerCanvasEMRServerlessExecutionRolePolicy` attached, and optionally mlplane's inline policy giving
it the seed's S3 object actions on the configured buckets only). For a custom domain it adds mlplane's own inline
policy to the domain's SageMaker execution role (`ecr:DescribeImages` on the two repositories; in a VPC without
internet access `ec2:CreateNetworkInterface` too): that role is not mlplane's, and nothing else on it is ever
changed; a rollback or deprovision removes only that inline policy.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from mlplane import aws, consistency
from mlplane.changes import PlannedChange
from mlplane.errors import Blocked, InputRejected, error_code, translate
from mlplane.member import ACCOUNT_TAG, CANVAS_ROLE_PREFIX, KEY_TAG, MANAGED_TAG
from mlplane.modules.base import Module
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mlplane.config import CanvasSettings, Settings
    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member

ROLE_PREFIX = CANVAS_ROLE_PREFIX
"""Canvas only offers existing roles whose name begins with this (seed 001, scenario 1 step 2)."""
PURPOSE = "canvas"
"""Every call of this module runs in the member session of this purpose (`session_policies/canvas.json`)."""
MANAGED_POLICY_NAME = "AmazonSageMakerCanvasEMRServerlessExecutionRolePolicy"
S3_POLICY_NAME = "mlplane-canvas-s3"
DOMAIN_POLICY_NAME = "mlplane-canvas-large-data"
EMR_SERVERLESS = "emr-serverless.amazonaws.com"
EMR_SERVERLESS_OPS = "ops.emr-serverless.amazonaws.com"
ECR_REPOSITORIES = ("sagemaker-data-wrangler-emr-container", "ap-dataprep-emr")

# IAM quotas (IAM user guide, "IAM and AWS STS quotas"): managed policies attached to a role (default 10), and
# the aggregate size of a role's inline policies (10,240 characters, whitespace not counted).
MANAGED_POLICIES_PER_ROLE = 10
INLINE_POLICIES_SIZE = 10_240

ROLE_TYPE = "canvas:role"
ATTACHMENT_TYPE = "canvas:role-attachment"
INLINE_POLICY_TYPE = "canvas:inline-policy"

ROLE_KEY = "canvas/role"
ATTACHMENT_KEY = "canvas/attachment"
S3_POLICY_KEY = "canvas/s3-policy"
DOMAIN_POLICY_KEY = "canvas/domain-policy"


# -- the plan (pure) --------------------------------------------------------------------------------------
def role_name(config: CanvasSettings) -> str:
    return ROLE_PREFIX + config.role_suffix


def managed_policy_arn(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{MANAGED_POLICY_NAME}"


def trust_policy(account_id: str) -> dict[str, Any]:
    """Seed 001 scenario 1 step 2: EMR Serverless may assume the role, for this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EMRServerlessTrustPolicy",
                "Effect": "Allow",
                "Principal": {"Service": EMR_SERVERLESS},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def s3_policy(buckets: tuple[str, ...], partition: str) -> dict[str, Any]:
    """Seed 001 scenario 1 step 3, scoped down as it recommends: the objects of the configured buckets only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"arn:{partition}:s3:::{bucket}/*" for bucket in buckets],
            }
        ],
    }


def domain_policy(config: CanvasSettings, partition: str) -> dict[str, Any]:
    """Seed 001 scenarios 2 and 3: the statements a custom domain's SageMaker execution role needs."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ECRDescribeImagesOperation",
            "Effect": "Allow",
            "Action": "ecr:DescribeImages",
            "Resource": [f"arn:{partition}:ecr:*:*:repository/{name}" for name in ECR_REPOSITORIES],
        }
    ]
    if config.vpc_without_internet:
        statements.append(
            {
                "Sid": "AllowEC2ENICreation",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface"],
                "Resource": [f"arn:{partition}:ec2:*:*:network-interface/*"],
                "Condition": {"StringEquals": {"aws:CalledViaLast": EMR_SERVERLESS_OPS}},
            }
        )
        if config.eni_tag_key:
            statements.append(
                {
                    "Sid": "AllowEC2ENICreationInSubnetAndSecurityGroupWithEMRTags",
                    "Effect": "Allow",
                    "Action": ["ec2:CreateNetworkInterface"],
                    "Resource": [f"arn:{partition}:ec2:*:*:subnet/*", f"arn:{partition}:ec2:*:*:security-group/*"],
                    "Condition": {"StringEquals": {f"aws:ResourceTag/{config.eni_tag_key}": config.eni_tag_value}},
                }
            )
    return {"Version": "2012-10-17", "Statement": statements}


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _size(document: Any) -> int:
    """IAM counts a policy's characters without whitespace."""
    return len("".join(json.dumps(document).split()))


# -- observe (read-only) ----------------------------------------------------------------------------------
def _iam(member: Member) -> Any:
    """IAM in the canvas session, whichever member the caller has (the rollback walker's is the core one)."""
    return member.for_purpose(PURPOSE).client("iam")


def _document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    text = str(raw or "{}")
    loaded = json.loads(unquote(text) if text.startswith("%") else text)
    return loaded if isinstance(loaded, dict) else {}


def _role(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        role: dict[str, Any] = iam.get_role(RoleName=name)["Role"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise translate(err, f"iam:GetRole {name}") from err
    return role


def _trusted(role: dict[str, Any], account_id: str) -> bool:
    return _document(role.get("AssumeRolePolicyDocument")) == trust_policy(account_id)


def _role_tags(iam: Any, name: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    try:
        for page in iam.get_paginator("list_role_tags").paginate(RoleName=name):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    except ClientError as err:
        raise translate(err, f"iam:ListRoleTags {name}") from err
    return tags


def _owned(iam: Any, name: str, account_id: str) -> bool:
    tags = _role_tags(iam, name)
    return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG) == account_id


def _attached(iam: Any, name: str) -> list[str]:
    arns: list[str] = []
    try:
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            arns.extend(p["PolicyArn"] for p in page.get("AttachedPolicies", []))
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return []
        raise translate(err, f"iam:ListAttachedRolePolicies {name}") from err
    return arns


def _inline_names(iam: Any, name: str) -> list[str]:
    names: list[str] = []
    try:
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            names.extend(page.get("PolicyNames", []))
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return []
        raise translate(err, f"iam:ListRolePolicies {name}") from err
    return names


def _inline(iam: Any, role: str, policy: str) -> dict[str, Any] | None:
    try:
        answer = iam.get_role_policy(RoleName=role, PolicyName=policy)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise translate(err, f"iam:GetRolePolicy {policy} of {role}") from err
    return _document(answer.get("PolicyDocument"))


# -- check ------------------------------------------------------------------------------------------------
def check(member: Member, settings: Settings) -> None:
    """Before anything is changed: the managed policy exists in the partition, the custom domain's execution
    role exists and has room for mlplane's inline policy, and the EMR Serverless role is mlplane's (if it
    exists) with room for the managed policy."""
    config = settings.modules.canvas
    iam = _iam(member)
    partition = aws.partition_for(member.region)
    arn = managed_policy_arn(partition)
    try:
        iam.get_policy(PolicyArn=arn)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            raise InputRejected(
                f"canvas: the AWS managed policy {arn} does not exist in partition {partition}"
            ) from err
        raise translate(err, f"iam:GetPolicy {arn}") from err
    name = role_name(config)
    if _role(iam, name) is not None:
        if not _owned(iam, name, member.account_id):
            raise InputRejected(f"canvas: role {name} exists in {member.account_id} and is not mlplane's")
        attached = _attached(iam, name)
        if arn not in attached and len(attached) >= MANAGED_POLICIES_PER_ROLE:
            raise InputRejected(
                f"canvas: role {name} has {len(attached)} managed policies attached; IAM allows"
                f" {MANAGED_POLICIES_PER_ROLE} per role: {MANAGED_POLICY_NAME} cannot be attached"
            )
    if config.execution_role_name:
        _check_execution_role(iam, config, member.account_id, partition)


def _check_execution_role(iam: Any, config: CanvasSettings, account_id: str, partition: str) -> None:
    name = config.execution_role_name
    if _role(iam, name) is None:
        raise InputRejected(f"canvas: the custom domain's execution role {name} does not exist in {account_id}")
    others = [p for p in _inline_names(iam, name) if p != DOMAIN_POLICY_NAME]
    used = sum(_size(_inline(iam, name, p)) for p in others)
    wanted = _size(domain_policy(config, partition))
    if used + wanted > INLINE_POLICIES_SIZE:
        raise InputRejected(
            f"canvas: role {name}'s inline policies have {used} characters; with mlplane's {wanted} they would"
            f" exceed IAM's {INLINE_POLICIES_SIZE} per role"
        )


# -- plan (read-only) -------------------------------------------------------------------------------------
def plan(member: Member, settings: Settings) -> list[PlannedChange]:
    """What `apply` would do now, per resource (`mlplane plan`; the audit's measure)."""
    config = settings.modules.canvas
    iam = _iam(member)
    partition = aws.partition_for(member.region)
    name = role_name(config)
    arn = managed_policy_arn(partition)
    changes: list[PlannedChange] = []
    role = _role(iam, name)
    if role is None:
        changes.append(_change(ROLE_TYPE, name, "create", None, "the EMR Serverless execution role"))
    elif not _owned(iam, name, member.account_id):
        changes.append(_change(ROLE_TYPE, name, "refuse", name, "exists and is not mlplane's"))
        return changes
    else:
        trusted = _trusted(role, member.account_id)
        changes.append(
            _change(ROLE_TYPE, name, "keep" if trusted else "change", name, "mlplane's" if trusted else "trust policy")
        )
    attached = role is not None and arn in _attached(iam, name)
    changes.append(
        _change(ATTACHMENT_TYPE, f"{name}/{MANAGED_POLICY_NAME}", "keep" if attached else "create", None, arn)
    )
    if config.s3_buckets:
        changes.append(_inline_change(iam, name, S3_POLICY_NAME, s3_policy(config.s3_buckets, partition), role))
    if config.execution_role_name:
        domain_role = _role(iam, config.execution_role_name)
        if domain_role is None:
            changes.append(
                _change(
                    INLINE_POLICY_TYPE,
                    f"{config.execution_role_name}/{DOMAIN_POLICY_NAME}",
                    "refuse",
                    None,
                    "the custom domain's execution role does not exist",
                )
            )
        else:
            changes.append(
                _inline_change(
                    iam, config.execution_role_name, DOMAIN_POLICY_NAME, domain_policy(config, partition), domain_role
                )
            )
    return changes


def _change(type: str, key: str, action: str, resource_id: str | None, detail: str) -> PlannedChange:
    return PlannedChange.model_validate(
        {"domain": "canvas", "type": type, "key": key, "action": action, "id": resource_id, "detail": detail}
    )


def _inline_change(
    iam: Any, role: str, policy: str, wanted: dict[str, Any], role_found: dict[str, Any] | None
) -> PlannedChange:
    key = f"{role}/{policy}"
    current = _inline(iam, role, policy) if role_found is not None else None
    if current is None:
        return _change(INLINE_POLICY_TYPE, key, "create", None, f"mlplane's inline policy on {role}")
    if current != wanted:
        return _change(INLINE_POLICY_TYPE, key, "change", f"{role}|{policy}", "document differs from the plan")
    return _change(INLINE_POLICY_TYPE, key, "keep", f"{role}|{policy}", f"mlplane's inline policy on {role}")


# -- apply ------------------------------------------------------------------------------------------------
def apply(member: Member, settings: Settings) -> StepOutput:
    """Converge: the role, the managed policy's attachment, the inline policies; a re-run creates nothing."""
    config = settings.modules.canvas
    iam = _iam(member)
    partition = aws.partition_for(member.region)
    name = role_name(config)
    arn = managed_policy_arn(partition)
    role_made = _ensure_role(member, iam, name)
    if not role_made:  # a role just made has seed 001's trust; one found may have been changed by hand
        _restore_trust(member, iam, name)
    made = [role_made, _ensure_attachment(member, iam, name, arn)]
    if config.s3_buckets:
        s3 = s3_policy(config.s3_buckets, partition)
        made.append(_ensure_inline(member, iam, key=S3_POLICY_KEY, role=name, policy=S3_POLICY_NAME, document=s3))
    if config.execution_role_name:
        made.append(
            _ensure_inline(
                member,
                iam,
                key=DOMAIN_POLICY_KEY,
                role=config.execution_role_name,
                policy=DOMAIN_POLICY_NAME,
                document=domain_policy(config, partition),
            )
        )
    created = sum(made)
    detail: dict[str, Any] = {"role": name, "managed_policy_arn": arn}
    if config.execution_role_name:
        detail["execution_role_policy"] = f"{config.execution_role_name}/{DOMAIN_POLICY_NAME}"
    return StepOutput(created=created, existing=len(made) - created, detail=detail)


def _ensure_role(member: Member, iam: Any, name: str) -> int:
    def find() -> str | None:
        return name if _role(iam, name) is not None and _owned(iam, name, member.account_id) else None

    def create() -> str:
        try:
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=_text(trust_policy(member.account_id)),
                Description="SageMaker Canvas large data processing: EMR Serverless execution role (mlplane)",
                Tags=member.tag_list(ROLE_KEY),
            )
        except ClientError as err:
            raise translate(err, f"iam:CreateRole {name} in {member.account_id}") from err
        return name

    _, made = member.ensure(key=ROLE_KEY, type=ROLE_TYPE, find=find, create=create, data={"role_name": name})
    return int(made)


def _restore_trust(member: Member, iam: Any, name: str) -> None:
    """mlplane's role found trusts what seed 001 says: a trust policy someone changed is put back (a re-run or
    reconcile; `plan` shows it as a change of the role)."""
    role = _role(iam, name)
    if role is None or _trusted(role, member.account_id):
        return
    try:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=_text(trust_policy(member.account_id)))
    except ClientError as err:
        raise translate(err, f"iam:UpdateAssumeRolePolicy {name} in {member.account_id}") from err


def _ensure_attachment(member: Member, iam: Any, name: str, arn: str) -> int:
    attachment = f"{name}|{arn}"

    def find() -> str | None:
        return attachment if arn in _attached(iam, name) else None

    def create() -> str:
        try:
            with consistency.settling():  # the role may have been created a moment ago
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        except ClientError as err:
            raise translate(err, f"iam:AttachRolePolicy {arn} to {name}") from err
        return attachment

    _, made = member.ensure(
        key=ATTACHMENT_KEY,
        type=ATTACHMENT_TYPE,
        find=find,
        create=create,
        data={"role_name": name, "policy_arn": arn},
    )
    return int(made)


def _ensure_inline(member: Member, iam: Any, *, key: str, role: str, policy: str, document: dict[str, Any]) -> int:
    resource_id = f"{role}|{policy}"

    def find() -> str | None:
        return resource_id if _inline(iam, role, policy) == document else None

    def create() -> str:
        try:
            with consistency.settling():
                iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=_text(document))
        except ClientError as err:
            raise translate(err, f"iam:PutRolePolicy {policy} on {role}") from err
        return resource_id

    _, made = member.ensure(
        key=key, type=INLINE_POLICY_TYPE, find=find, create=create, data={"role_name": role, "policy_name": policy}
    )
    return int(made)


# -- undo handlers ----------------------------------------------------------------------------------------
def _find_role(member: Member, record: ResourceRecord) -> str | None:
    name = str(record.data.get("role_name", ""))
    iam = _iam(member)
    if not name or _role(iam, name) is None:
        return None
    tags = _role_tags(iam, name)
    mine = tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG) == member.account_id
    return name if mine and tags.get(KEY_TAG) == record.key else None


def _undo_role(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Delete the role mlplane created, once what mlplane put on it is gone; anything else on it blocks."""
    del record
    iam = _iam(member)
    if _role(iam, resource_id) is None:
        return Undone("gone")
    if not _owned(iam, resource_id, member.account_id):
        raise Blocked(f"iam role {resource_id} in {member.account_id} no longer carries mlplane's tags")
    blockers = [f"attached policy {arn}" for arn in _attached(iam, resource_id)]
    blockers += [f"inline policy {name}" for name in _inline_names(iam, resource_id)]
    try:
        profiles = iam.list_instance_profiles_for_role(RoleName=resource_id).get("InstanceProfiles", [])
        blockers += [f"instance profile {p['InstanceProfileName']}" for p in profiles]
        if blockers:
            raise Blocked(f"iam role {resource_id} in {member.account_id} still has {', '.join(blockers)}")
        iam.delete_role(RoleName=resource_id)
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchEntity":
            return Undone("gone")
        if code == "DeleteConflict":
            raise Blocked(f"iam role {resource_id}: {translate(err, 'iam:DeleteRole')}") from err
        raise translate(err, f"iam:DeleteRole {resource_id} in {member.account_id}") from err
    return Undone("removed")


def _find_attachment(member: Member, record: ResourceRecord) -> str | None:
    name, arn = str(record.data.get("role_name", "")), str(record.data.get("policy_arn", ""))
    return f"{name}|{arn}" if name and arn and arn in _attached(_iam(member), name) else None


def _undo_attachment(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    del record
    name, _, arn = resource_id.partition("|")
    try:
        _iam(member).detach_role_policy(RoleName=name, PolicyArn=arn)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return Undone("gone")
        raise translate(err, f"iam:DetachRolePolicy {arn} from {name}") from err
    return Undone("removed")


def _find_inline(member: Member, record: ResourceRecord) -> str | None:
    role, policy = str(record.data.get("role_name", "")), str(record.data.get("policy_name", ""))
    found = role and policy and _inline(_iam(member), role, policy) is not None
    return f"{role}|{policy}" if found else None


def _undo_inline(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Only mlplane's inline policy, by its name: the role (perhaps not mlplane's) and the rest of it stay."""
    del record
    role, _, policy = resource_id.partition("|")
    try:
        _iam(member).delete_role_policy(RoleName=role, PolicyName=policy)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return Undone("gone")
        raise translate(err, f"iam:DeleteRolePolicy {policy} from {role}") from err
    return Undone("removed")


HANDLERS = {
    ROLE_TYPE: Handler(find=_find_role, undo=_undo_role),
    ATTACHMENT_TYPE: Handler(find=_find_attachment, undo=_undo_attachment),
    INLINE_POLICY_TYPE: Handler(find=_find_inline, undo=_undo_inline),
}

MODULE = Module(name="canvas", check=check, plan=plan, apply=apply, handlers=HANDLERS)
