"""CreateIam: the service account user and its customer-managed policy (REQUIREMENTS I1, I2).

`run` observes the account, plans (pure, `mlplane.iam.plan`) and converges: the user is created if absent and
reused if present (a user mlplane did not create is never recorded, so never deleted); the policy is created
with the seed's document and tags, or given a new default version when its document differs; the policy is
attached to the user. The further customer policies of SaExtraPolicies (mlplane/policies/*.json) are each
converged the same way, with ledger keys of their own (iam/policy/<name>, iam/attachment/<name>, ...). The
optional access key is `mlplane.iam.access_key`'s. Every change is in the ledger first, so rollback
(`mlplane.rollback`) and `teardown` (deprovision) undo it newest first: detach, delete the policy, delete the user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from mlplane import aws, consistency
from mlplane.config import Settings
from mlplane.errors import Blocked, error_code, translate
from mlplane.iam import plan as iam_plan
from mlplane.iam import policy as iam_policy
from mlplane.iam.models import (
    IamObserved,
    IamPlan,
    ObservedPolicy,
    ObservedUser,
    PolicyAction,
    PolicyPlan,
    PolicyVersion,
    UserAction,
)
from mlplane.member import ACCOUNT_TAG, ADOPT, ADOPTED, EXECUTION_TAG, KEY_TAG, MANAGED_TAG, Adoption, adopted_here
from mlplane.observability import logger
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member

USER_TYPE = "iam:user"
POLICY_TYPE = "iam:policy"
ATTACHMENT_TYPE = "iam:attachment"
POLICY_VERSION_TYPE = "iam:policy-version"  # a new default version of a policy mlplane did not create
POLICY_TAG_TYPE = "iam:policy-tag"  # the AACResource tag added to a policy mlplane did not create
USER_TAG_TYPE = "iam:user-tag"  # the AACResource tag added to a user mlplane did not create (I4)

USER_KEY = "iam/user"
POLICY_KEY = "iam/policy"
ATTACHMENT_KEY = "iam/attachment"
POLICY_VERSION_KEY = "iam/policy-version"
POLICY_TAG_KEY = "iam/policy-tag"
USER_TAG_KEY = "iam/user-tag"


def policy_arn(member: Member, name: str) -> str:
    return f"arn:{aws.partition_for(member.region)}:iam::{member.account_id}:policy/{name}"


def owned(tags: dict[str, str], account_id: str) -> bool:
    """The resource carries mlplane's tags for this account."""
    return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG) == account_id


# -- observe ----------------------------------------------------------------------------------------------
def observe(member: Member, settings: Settings, *, arn: str, extra_arns: dict[str, str] | None = None) -> IamObserved:
    iam: IAMClient = member.client("iam")
    extra = {name: _observe_policy(iam, extra_arn, member.account_id) for name, extra_arn in (extra_arns or {}).items()}
    return IamObserved(
        account_id=member.account_id,
        user=_observe_user(iam, settings.sa_user_name, member.account_id),
        policy=_observe_policy(iam, arn, member.account_id),
        extra_policies={name: policy for name, policy in extra.items() if policy is not None},
    )


def decide(member: Member, settings: Settings) -> tuple[IamPlan, IamObserved, dict[str, dict[str, Any]]]:
    """The plan for this account (read-only), what it was made from, and each policy's shipped document by ARN;
    ConfigError first."""
    document = iam_policy.shipped_policy()
    iam_policy.check_policy(settings.sa_policy_name, document)  # before any AWS call
    extras = iam_policy.extra_policies(settings)
    arn = policy_arn(member, settings.sa_policy_name)
    extra = {name: (policy_arn(member, name), doc) for name, doc in extras.items()}
    observed = observe(member, settings, arn=arn, extra_arns={name: a for name, (a, _) in extra.items()})
    decided = iam_plan.plan(settings, observed, document=document, policy_arn=arn, extra=extra)
    return decided, observed, {arn: document, **dict(extra.values())}


def _observe_user(iam: IAMClient, name: str, account_id: str) -> ObservedUser | None:
    where = f"{name} in {account_id}"
    try:
        iam.get_user(UserName=name)
        tags = _user_tags(iam, name)
        attached: list[str] = []
        for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=name):
            attached.extend(p["PolicyArn"] for p in page.get("AttachedPolicies", []) if "PolicyArn" in p)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise translate(err, f"iam:GetUser {where}") from err
    return ObservedUser(
        name=name,
        owned=owned(tags, account_id),
        adopted=adopted_here(tags, account_id),
        tags=tags,
        attached_policy_arns=tuple(attached),
    )


def _observe_policy(iam: IAMClient, arn: str, account_id: str) -> ObservedPolicy | None:
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        default_id = str(policy.get("DefaultVersionId", "v1"))
        version = iam.get_policy_version(PolicyArn=arn, VersionId=default_id)["PolicyVersion"]
        versions = [
            PolicyVersion(version_id=str(v.get("VersionId")), is_default=bool(v.get("IsDefaultVersion")))
            for page in iam.get_paginator("list_policy_versions").paginate(PolicyArn=arn)
            for v in page.get("Versions", [])
        ]
        tags = _policy_tags(iam, arn)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise translate(err, f"iam:GetPolicy {arn}") from err
    return ObservedPolicy(
        arn=arn,
        owned=owned(tags, account_id),
        adopted=adopted_here(tags, account_id),
        tags=tags,
        default_document=_document(version.get("Document")),
        default_version_id=default_id,
        versions=tuple(versions),
    )


def _document(raw: Any) -> dict[str, Any]:
    # botocore decodes IAM's URL-encoded policy JSON into a dict; accept a string too.
    if isinstance(raw, dict):
        return raw
    text = str(raw or "{}")
    loaded = json.loads(unquote(text) if text.startswith("%") else text)
    return loaded if isinstance(loaded, dict) else {}


def _user_tags(iam: IAMClient, name: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in iam.get_paginator("list_user_tags").paginate(UserName=name):
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return tags


def _policy_tags(iam: IAMClient, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in iam.get_paginator("list_policy_tags").paginate(PolicyArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return tags


# -- run --------------------------------------------------------------------------------------------------
def run(member: Member, settings: Settings) -> StepOutput:
    """CreateIam: converge the service account and its policy; a re-run changes nothing."""
    decided, _, documents = decide(member, settings)
    arn = decided.policy_arn
    iam: IAMClient = member.client("iam")
    created = existing = 0

    made = _ensure_user(member, iam, decided)
    created, existing = created + made, existing + (1 - made)
    for policy in decided.policies():  # the seed's first, then SaExtraPolicies in their order
        made = _ensure_policy(member, iam, policy, documents[policy.arn])
        created, existing = created + made, existing + (1 - made)
        made = _ensure_attachment(member, iam, decided.user_name, policy)
        created, existing = created + made, existing + (1 - made)
    logger.info("iam converged", user=decided.user_name, policy=arn, newly_created=created)
    return StepOutput(
        created=created,
        existing=existing,
        detail={
            "user": decided.user_name,
            "user_action": decided.user_action.value,
            "policy_arn": arn,
            "policy_action": decided.policy_action.value,
            "policy_size": decided.policy_size,
            "extra_policies": [{"arn": p.arn, "action": p.action.value} for p in decided.extra_policies],
        },
    )


def _ensure_user(member: Member, iam: IAMClient, decided: IamPlan) -> int:
    if decided.tag_user:
        _tag_user(member, iam, decided)
    name = decided.user_name
    if decided.user_action == UserAction.REUSE:
        _adopt(
            member,
            key=USER_KEY,
            type=USER_TYPE,
            resource_id=name,
            data={"user_name": name},
            tags_now=lambda: _user_tags(iam, name),
            tag=lambda tags: _adopt_iam(member).tag_user(UserName=name, Tags=tags),
        )
        return 0

    def find() -> str | None:
        user = _observe_user(iam, name, member.account_id)
        return name if user is not None and user.owned else None

    def create() -> str:
        try:
            tags = member.tag_list(USER_KEY, {iam_plan.AAC_RESOURCE_TAG: iam_plan.AAC_USER_TAG_VALUE})
            iam.create_user(UserName=name, Tags=tags)  # type: ignore[arg-type]
        except ClientError as err:
            raise translate(err, f"iam:CreateUser {name} in {member.account_id}") from err
        return name

    _, made = member.ensure(key=USER_KEY, type=USER_TYPE, find=find, create=create, data={"user_name": name})
    return int(made)


def _ensure_policy(member: Member, iam: IAMClient, decided: PolicyPlan, document: dict[str, Any]) -> int:
    arn = decided.arn
    key = POLICY_KEY + decided.suffix
    text = json.dumps(document, separators=(",", ":"))
    made = False
    if not decided.is_mlplanes:
        _adopt(
            member,
            key=key,
            type=POLICY_TYPE,
            resource_id=arn,
            data={"policy_arn": arn},
            tags_now=lambda: _policy_tags(iam, arn),
            tag=lambda tags: _adopt_iam(member).tag_policy(PolicyArn=arn, Tags=tags),
        )
    if decided.is_mlplanes:

        def find() -> str | None:
            policy = _observe_policy(iam, arn, member.account_id)
            return arn if policy is not None and policy.owned else None

        def create() -> str:
            tags = member.tag_list(key, {iam_plan.AAC_RESOURCE_TAG: iam_plan.AAC_RESOURCE_VALUE})
            description = (
                f"AAC Machine Learning customer policy {iam_policy.POLICIES_DIR}/{decided.name}.json, "
                "managed by mlplane"
                if decided.suffix
                else "AAC Machine Learning service account policy (seed 000 step 1a), managed by mlplane"
            )
            try:
                answer = iam.create_policy(
                    PolicyName=decided.name,
                    PolicyDocument=text,
                    Description=description,
                    Tags=tags,  # type: ignore[arg-type]
                )
            except ClientError as err:
                raise translate(err, f"iam:CreatePolicy {decided.name} in {member.account_id}") from err
            return str(answer["Policy"].get("Arn", arn))

        _, made = member.ensure(key=key, type=POLICY_TYPE, find=find, create=create, data={"policy_arn": arn})
    # adopt: a hand-made policy's document is left as found (audit reports it; reconcile gives it a new version)
    if decided.action == PolicyAction.UPDATE and not (member.adopting and not decided.is_mlplanes):
        _new_version(member, iam, decided, text)
    if decided.tag_policy:
        _tag_policy(member, iam, decided)
    return int(made)


def _new_version(member: Member, iam: IAMClient, decided: PolicyPlan, text: str) -> None:
    """A new default version with the shipped document, pruning the oldest to stay within IAM's five."""
    arn = decided.arn
    key = POLICY_VERSION_KEY + decided.suffix
    record = None
    if not decided.is_mlplanes:
        current = _observe_policy(iam, arn, member.account_id)
        previous = current.default_version_id if current else "v1"
        record = member.ledger.record_intent(
            member.account_id,
            key=key,
            type=POLICY_VERSION_TYPE,
            step=member.step,
            execution=member.execution,
            data={"policy_arn": arn, "previous_default": previous},
        )
    try:
        for version_id in decided.prune_versions:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version_id)
        answer = iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    except ClientError as err:
        raise translate(err, f"iam:CreatePolicyVersion {arn}") from err
    version_id = str(answer["PolicyVersion"].get("VersionId", ""))
    if record is not None:
        member.ledger.record_created(member.account_id, key=key, resource_id=version_id)
    logger.info("iam policy updated", policy=arn, version=version_id, pruned=list(decided.prune_versions))


def _tag_policy(member: Member, iam: IAMClient, decided: PolicyPlan) -> None:
    """Seed 000 step 1b's tag on a policy that lacks it (recorded when the policy is not mlplane's)."""
    arn = decided.arn
    key = POLICY_TAG_KEY + decided.suffix
    if not decided.is_mlplanes:
        tags = _policy_tags(iam, arn)
        member.ledger.record_intent(
            member.account_id,
            key=key,
            type=POLICY_TAG_TYPE,
            step=member.step,
            execution=member.execution,
            data={"policy_arn": arn, "previous": tags.get(iam_plan.AAC_RESOURCE_TAG)},
        )
    try:
        iam.tag_policy(PolicyArn=arn, Tags=[{"Key": iam_plan.AAC_RESOURCE_TAG, "Value": iam_plan.AAC_RESOURCE_VALUE}])
    except ClientError as err:
        raise translate(err, f"iam:TagPolicy {arn}") from err
    if not decided.is_mlplanes:
        member.ledger.record_created(member.account_id, key=key, resource_id=arn)


def _tag_user(member: Member, iam: IAMClient, decided: IamPlan) -> None:
    """The vendor's tag on an existing service account that lacks it (recorded when the user is not mlplane's:
    a rollback puts back what it had)."""
    name = decided.user_name
    if not decided.user_is_mlplanes:
        tags = _user_tags(iam, name)
        member.ledger.record_intent(
            member.account_id,
            key=USER_TAG_KEY,
            type=USER_TAG_TYPE,
            step=member.step,
            execution=member.execution,
            data={"user_name": name, "previous": tags.get(iam_plan.AAC_RESOURCE_TAG)},
        )
    try:
        iam.tag_user(UserName=name, Tags=[{"Key": iam_plan.AAC_RESOURCE_TAG, "Value": iam_plan.AAC_USER_TAG_VALUE}])
    except ClientError as err:
        raise translate(err, f"iam:TagUser {name} in {member.account_id}") from err
    if not decided.user_is_mlplanes:
        member.ledger.record_created(member.account_id, key=USER_TAG_KEY, resource_id=name)


def _ensure_attachment(member: Member, iam: IAMClient, user: str, decided: PolicyPlan) -> int:
    arn = decided.arn
    key = ATTACHMENT_KEY + decided.suffix
    attachment_id = f"{user}|{arn}"
    if not decided.attach and member.ledger.resource(member.account_id, key) is None:
        if member.adopting:  # attached by hand: tracked as adopted, never detached
            member.ensure(
                key=key,
                type=ATTACHMENT_TYPE,
                find=lambda: None,
                create=lambda: attachment_id,
                data={"user_name": user, "policy_arn": arn},
                adopt=Adoption(match=lambda: attachment_id if _attached(iam, user, arn) else None),
            )
        return 0  # attached before mlplane came: not ours to record, nor to detach

    def find() -> str | None:
        return attachment_id if _attached(iam, user, arn) else None

    def create() -> str:
        try:
            with consistency.settling():  # the user and the policy may have been created a moment ago
                iam.attach_user_policy(UserName=user, PolicyArn=arn)
        except ClientError as err:
            raise translate(err, f"iam:AttachUserPolicy {arn} to {user}") from err
        return attachment_id

    _, made = member.ensure(
        key=key,
        type=ATTACHMENT_TYPE,
        find=find,
        create=create,
        data={"user_name": user, "policy_arn": arn},
    )
    return int(made)


def _attached(iam: IAMClient, user: str, arn: str) -> bool:
    try:
        for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=user):
            if any(p.get("PolicyArn") == arn for p in page.get("AttachedPolicies", [])):
                return True
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise translate(err, f"iam:ListAttachedUserPolicies {user}") from err
    return False


def _adopt(
    member: Member,
    *,
    key: str,
    type: str,
    resource_id: str,
    data: dict[str, Any],
    tags_now: Callable[[], dict[str, str]],
    tag: Callable[[list[Any]], object],
) -> None:
    """An adopt run takes over the hand-made user or policy (D3): recorded ADOPTED, tagged mlplane:managed=adopted."""
    record = member.ledger.resource(member.account_id, key)
    if not member.adopting and (record is None or record.state != "adopted"):
        return

    def match() -> str | None:
        tags = tags_now()
        return resource_id if tags.get(MANAGED_TAG) in (None, ADOPTED) else None

    def put_tags(found: str) -> None:
        try:
            tag([{"Key": k, "Value": v} for k, v in member.adopted_tags(key).items()])
        except ClientError as err:
            raise translate(err, f"iam:Tag {found}") from err

    member.ensure(
        key=key,
        type=type,
        find=lambda: None,
        create=lambda: resource_id,  # never reached: it exists (the plan reuses it)
        data=data,
        adopt=Adoption(match=match, tag=put_tags),
    )


_MLPLANE_TAG_KEYS = [MANAGED_TAG, ACCOUNT_TAG, EXECUTION_TAG, KEY_TAG]


def _adopt_iam(member: Member) -> IAMClient:
    """IAM in the adopt session: it may put on and take off only mlplane:* tags of the service account and policy."""
    iam: IAMClient = member.client("iam", ADOPT)
    return iam


def _release_user(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam = _adopt_iam(member)
    return _untag(
        lambda: iam.untag_user(UserName=resource_id, TagKeys=_MLPLANE_TAG_KEYS), f"iam:UntagUser {resource_id}"
    )


def _release_policy(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam = _adopt_iam(member)
    return _untag(
        lambda: iam.untag_policy(PolicyArn=resource_id, TagKeys=_MLPLANE_TAG_KEYS), f"iam:UntagPolicy {resource_id}"
    )


def _untag(untag: Callable[[], object], where: str) -> Undone:
    try:
        untag()
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return Undone("gone")
        raise translate(err, where) from err
    return Undone("removed")


# -- rollback handlers ------------------------------------------------------------------------------------
def _find_user(member: Member, record: ResourceRecord) -> str | None:
    name = str(record.data.get("user_name", ""))
    user = _observe_user(member.client("iam"), name, member.account_id) if name else None
    return name if user is not None and user.owned and user.tags.get(KEY_TAG) == record.key else None


def _undo_user(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam: IAMClient = member.client("iam")
    user = _observe_user(iam, resource_id, member.account_id)
    if user is None:
        return Undone("gone")
    if not user.owned:
        raise Blocked(f"iam user {resource_id} in {member.account_id} no longer carries mlplane's tags")
    blockers = _user_blockers(iam, user)
    if blockers:
        raise Blocked(f"iam user {resource_id} in {member.account_id} still has {', '.join(blockers)}")
    try:
        iam.delete_user(UserName=resource_id)
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchEntity":
            return Undone("gone")
        if code == "DeleteConflict":
            raise Blocked(f"iam user {resource_id} in {member.account_id}: {translate(err, 'iam:DeleteUser')}") from err
        raise translate(err, f"iam:DeleteUser {resource_id} in {member.account_id}") from err
    return Undone("removed")


def _user_blockers(iam: IAMClient, user: ObservedUser) -> list[str]:
    """What someone else gave the user and mlplane will not remove: IAM refuses DeleteUser (DeleteConflict)
    while any of it exists, and mlplane never creates credentials for the service account (I1)."""
    name = user.name
    try:
        keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", [])]
        inline = list(iam.list_user_policies(UserName=name).get("PolicyNames", []))
        groups = [g["GroupName"] for g in iam.list_groups_for_user(UserName=name).get("Groups", [])]
        ssh = [k["SSHPublicKeyId"] for k in iam.list_ssh_public_keys(UserName=name).get("SSHPublicKeys", [])]
        certificates = [
            c["CertificateId"] for c in iam.list_signing_certificates(UserName=name).get("Certificates", [])
        ]
        mfa = [d["SerialNumber"] for d in iam.list_mfa_devices(UserName=name).get("MFADevices", [])]
    except ClientError as err:
        raise translate(err, f"iam:ListAccessKeys {name}") from err
    blockers = ["login profile (console password)"] if _has_login_profile(iam, name) else []
    blockers += [f"access key {k}" for k in keys]
    blockers += [f"SSH public key {k}" for k in ssh]
    blockers += [f"signing certificate {c}" for c in certificates]
    blockers += [f"MFA device {d}" for d in mfa]
    blockers += [f"attached policy {arn}" for arn in user.attached_policy_arns]
    blockers += [f"inline policy {p}" for p in inline]
    blockers += [f"group {g}" for g in groups]
    return blockers


def _has_login_profile(iam: IAMClient, name: str) -> bool:
    try:
        iam.get_login_profile(UserName=name)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise translate(err, f"iam:GetLoginProfile {name}") from err
    return True


def _find_policy(member: Member, record: ResourceRecord) -> str | None:
    arn = str(record.data.get("policy_arn", ""))
    policy = _observe_policy(member.client("iam"), arn, member.account_id) if arn else None
    return arn if policy is not None and policy.owned and policy.tags.get(KEY_TAG) == record.key else None


def _undo_policy(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam: IAMClient = member.client("iam")
    policy = _observe_policy(iam, resource_id, member.account_id)
    if policy is None:
        return Undone("gone")
    if not policy.owned:
        raise Blocked(f"iam policy {resource_id} no longer carries mlplane's tags")
    try:
        entities = iam.list_entities_for_policy(PolicyArn=resource_id)
        names = [f"user {u['UserName']}" for u in entities.get("PolicyUsers", [])]
        names += [f"role {r['RoleName']}" for r in entities.get("PolicyRoles", [])]
        names += [f"group {g['GroupName']}" for g in entities.get("PolicyGroups", [])]
        if names:
            raise Blocked(f"iam policy {resource_id} is still attached to {', '.join(names)}")
        for version in policy.versions:
            if not version.is_default:
                iam.delete_policy_version(PolicyArn=resource_id, VersionId=version.version_id)
        iam.delete_policy(PolicyArn=resource_id)
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchEntity":
            return Undone("gone")
        if code == "DeleteConflict":
            raise Blocked(f"iam policy {resource_id}: {translate(err, 'iam:DeletePolicy')}") from err
        raise translate(err, f"iam:DeletePolicy {resource_id}") from err
    return Undone("removed")


def _find_attachment(member: Member, record: ResourceRecord) -> str | None:
    user, arn = str(record.data.get("user_name", "")), str(record.data.get("policy_arn", ""))
    return f"{user}|{arn}" if user and arn and _attached(member.client("iam"), user, arn) else None


def _undo_attachment(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    user, _, arn = resource_id.partition("|")
    iam: IAMClient = member.client("iam")
    try:
        iam.detach_user_policy(UserName=user, PolicyArn=arn)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return Undone("gone")
        raise translate(err, f"iam:DetachUserPolicy {arn} from {user}") from err
    return Undone("removed")


def _find_policy_version(member: Member, record: ResourceRecord) -> str | None:
    arn = str(record.data.get("policy_arn", ""))
    policy = _observe_policy(member.client("iam"), arn, member.account_id) if arn else None
    if policy is None or policy.default_version_id == record.data.get("previous_default"):
        return None
    return policy.default_version_id


def _undo_policy_version(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Make the version that was default before mlplane default again and delete the versions mlplane added."""
    del resource_id
    iam: IAMClient = member.client("iam")
    arn = str(record.data.get("policy_arn", ""))
    previous = str(record.data.get("previous_default", ""))
    policy = _observe_policy(iam, arn, member.account_id)
    if policy is None or previous not in {v.version_id for v in policy.versions}:
        return Undone("gone", reason=f"version {previous} of {arn} no longer exists")
    try:
        if policy.default_version_id != previous:
            iam.set_default_policy_version(PolicyArn=arn, VersionId=previous)
        for version in policy.versions:
            if iam_plan.version_number(version.version_id) > iam_plan.version_number(previous):
                iam.delete_policy_version(PolicyArn=arn, VersionId=version.version_id)
    except ClientError as err:
        raise translate(err, f"iam:SetDefaultPolicyVersion {arn}") from err
    return Undone("removed")


def _find_policy_tag(member: Member, record: ResourceRecord) -> str | None:
    arn = str(record.data.get("policy_arn", ""))
    return arn or None


def _undo_policy_tag(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam: IAMClient = member.client("iam")
    return _put_back_tag(
        record,
        untag=lambda: iam.untag_policy(PolicyArn=resource_id, TagKeys=[iam_plan.AAC_RESOURCE_TAG]),
        tag=lambda tags: iam.tag_policy(PolicyArn=resource_id, Tags=tags),
        where=f"iam:UntagPolicy {resource_id}",
    )


def _find_user_tag(member: Member, record: ResourceRecord) -> str | None:
    name = str(record.data.get("user_name", ""))
    return name or None


def _undo_user_tag(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam: IAMClient = member.client("iam")
    return _put_back_tag(
        record,
        untag=lambda: iam.untag_user(UserName=resource_id, TagKeys=[iam_plan.AAC_RESOURCE_TAG]),
        tag=lambda tags: iam.tag_user(UserName=resource_id, Tags=tags),
        where=f"iam:UntagUser {resource_id}",
    )


def _put_back_tag(
    record: ResourceRecord, *, untag: Callable[[], object], tag: Callable[[list[Any]], object], where: str
) -> Undone:
    """The AACResource tag as it was before mlplane set it: removed if there was none, else its old value."""
    previous = record.data.get("previous")
    try:
        if previous is None:
            untag()
        else:
            tag([{"Key": iam_plan.AAC_RESOURCE_TAG, "Value": str(previous)}])
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return Undone("gone")
        raise translate(err, where) from err
    return Undone("removed")


HANDLERS = {
    USER_TYPE: Handler(find=_find_user, undo=_undo_user, release=_release_user),
    POLICY_TYPE: Handler(find=_find_policy, undo=_undo_policy, release=_release_policy),
    ATTACHMENT_TYPE: Handler(find=_find_attachment, undo=_undo_attachment),
    POLICY_VERSION_TYPE: Handler(find=_find_policy_version, undo=_undo_policy_version),
    POLICY_TAG_TYPE: Handler(find=_find_policy_tag, undo=_undo_policy_tag),
    USER_TAG_TYPE: Handler(find=_find_user_tag, undo=_undo_user_tag),
}
"""The undo handlers of the iam:* ledger types (`mlplane.rollback.registry`): detach, delete the policy
mlplane created, and delete the service account only if mlplane created it."""
