"""The secure-vault key (REQUIREMENTS K1) and PatchKmsPolicy (K2).

`ensure_key` finds the key by alias or creates it (rotation on, mlplane's tags, the default root statement) and
its alias. `patch_policy` merges mlplane's statement for the vendor's credential-service-role into the key
policy, after saving the previous policy in the ledger; rollback and `teardown` put it back. A key mlplane
created is scheduled for deletion on undo: KMS cannot delete a key at once, so that undo is "deferred".
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.config import Settings
from mlplane.errors import Blocked, Conflict, PrincipalNotPropagated, TimedOut, error_code, translate
from mlplane.kms import policy as key_policy
from mlplane.kms.models import VaultKey
from mlplane.member import ACCOUNT_TAG, ADOPT, ADOPTED, EXECUTION_TAG, KEY_TAG, MANAGED_TAG, Adoption, adopted_here
from mlplane.observability import logger
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import PollOutput, StepOutput

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient

    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member

KEY_TYPE = "kms:key"
ALIAS_TYPE = "kms:alias"
POLICY_TYPE = "kms:key-policy"

KEY_KEY = "kms/key"
ALIAS_KEY = "kms/alias"
POLICY_KEY = "kms/key-policy"

DELETION_WINDOW_DAYS = 7  # the shortest pending window KMS allows
_GONE_CODES = frozenset({"NotFoundException", "KMSInvalidStateException"})


# -- observe ----------------------------------------------------------------------------------------------
def find_key(member: Member, alias: str) -> VaultKey | None:
    """The key `alias` names in the member account, or None."""
    kms: KMSClient = member.client("kms")
    try:
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as err:
        if error_code(err) == "NotFoundException":
            return None
        raise translate(err, f"kms:DescribeKey {alias} in {member.account_id}") from err
    key_id = str(meta["KeyId"])
    tags = _key_tags(kms, key_id)
    return VaultKey(
        key_id=key_id,
        arn=str(meta.get("Arn", "")),
        alias=alias,
        state=str(meta.get("KeyState", "")),
        owned=_owned(tags, member.account_id),
        adopted=adopted_here(tags, member.account_id),
    )


def _key_tags(kms: KMSClient, key_id: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
        tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
    return tags


def _owned(tags: dict[str, str], account_id: str) -> bool:
    return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG) == account_id


def _find_tagged_key(member: Member, key: str) -> str | None:
    """The key mlplane created for plan key `key` (by tag), not pending deletion: a lost ledger write's recovery."""
    kms: KMSClient = member.client("kms")
    try:
        pages = list(kms.get_paginator("list_keys").paginate())
    except ClientError as err:
        raise translate(err, f"kms:ListKeys in {member.account_id}") from err
    for page in pages:
        for entry in page.get("Keys", []):
            key_id = str(entry.get("KeyId", ""))
            try:
                tags = _key_tags(kms, key_id)
                if not _owned(tags, member.account_id) or tags.get(KEY_TAG) != key:
                    continue
                state = kms.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState")
            except ClientError:
                continue  # e.g. an AWS managed key whose tags this role may not list: not mlplane's
            if state != "PendingDeletion":
                return key_id
    return None


# -- K1: the secure-vault key -----------------------------------------------------------------------------
def ensure_key(member: Member, settings: Settings) -> StepOutput:
    """K1: the vault key found by alias, or created (rotation enabled) with its alias; a re-run changes nothing."""
    alias = settings.vault_key_alias
    found = find_key(member, alias)
    if found is not None:
        if found.state == "PendingDeletion":
            raise Conflict(f"vault key {alias} ({found.key_id}) in {member.account_id} is pending deletion")
        if not found.owned:
            _adopt_key(member, found)
        return StepOutput(existing=1, detail={"key_id": found.key_id, "alias": alias, "owned": found.owned})
    kms: KMSClient = member.client("kms")
    partition = aws.partition_for(member.region)

    def create_key() -> str:
        try:
            answer = kms.create_key(
                Policy=key_policy.policy_text(key_policy.default_key_policy(member.account_id, partition)),
                Description="AAC secure vault key (seed 000), managed by mlplane",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in member.tag_list(KEY_KEY)],
            )
        except ClientError as err:
            raise translate(err, f"kms:CreateKey in {member.account_id}") from err
        return str(answer["KeyMetadata"]["KeyId"])

    key_id, made_key = member.ensure(
        key=KEY_KEY, type=KEY_TYPE, find=lambda: _find_tagged_key(member, KEY_KEY), create=create_key
    )
    _enable_rotation(kms, key_id)

    def find_alias() -> str | None:
        target = find_key(member, alias)
        return alias if target is not None and target.key_id == key_id else None

    def create_alias() -> str:
        try:
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        except ClientError as err:
            raise translate(err, f"kms:CreateAlias {alias} in {member.account_id}") from err
        return alias

    _, made_alias = member.ensure(
        key=ALIAS_KEY,
        type=ALIAS_TYPE,
        find=find_alias,
        create=create_alias,
        data={"alias": alias, "key_id": key_id},
    )
    created = int(made_key) + int(made_alias)
    logger.info("vault key ensured", key_id=key_id, alias=alias, newly_created=created)
    return StepOutput(created=created, existing=2 - created, detail={"key_id": key_id, "alias": alias, "owned": True})


def _adopt_key(member: Member, found: VaultKey) -> None:
    """An adopt run takes over the hand-made vault key and its alias (D3): recorded ADOPTED, the key tagged
    mlplane:managed=adopted; its rotation and policy are left as found (audit reports them). Never deleted."""
    record = member.ledger.resource(member.account_id, KEY_KEY)
    if not member.adopting and (record is None or record.state != "adopted"):
        return
    kms: KMSClient = member.client("kms")

    def match() -> str | None:
        return found.key_id if _key_tags(kms, found.key_id).get(MANAGED_TAG) in (None, ADOPTED) else None

    def tag(key_id: str) -> None:
        tags = [{"TagKey": k, "TagValue": v} for k, v in member.adopted_tags(KEY_KEY).items()]
        try:  # in the adopt session: mlplane:* tags on the vault key only
            member.client("kms", ADOPT).tag_resource(KeyId=key_id, Tags=tags)
        except ClientError as err:
            raise translate(err, f"kms:TagResource {key_id} in {member.account_id}") from err

    for key, type, resource_id, adoption in (
        (KEY_KEY, KEY_TYPE, found.key_id, Adoption(match=match, tag=tag)),
        (ALIAS_KEY, ALIAS_TYPE, found.alias, Adoption(match=lambda: found.alias)),
    ):
        member.ensure(
            key=key,
            type=type,
            find=lambda: None,
            create=functools.partial(str, resource_id),  # never reached: the key exists
            data={"alias": found.alias, "key_id": found.key_id},
            adopt=adoption,
        )


def _release_key(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    kms: KMSClient = member.client("kms", ADOPT)
    try:
        kms.untag_resource(KeyId=resource_id, TagKeys=[MANAGED_TAG, ACCOUNT_TAG, EXECUTION_TAG, KEY_TAG])
    except ClientError as err:
        if error_code(err) in _GONE_CODES:
            return Undone("gone")
        raise translate(err, f"kms:UntagResource {resource_id} in {member.account_id}") from err
    return Undone("removed")


def _enable_rotation(kms: KMSClient, key_id: str) -> None:
    try:
        if not kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled"):
            kms.enable_key_rotation(KeyId=key_id)
    except ClientError as err:
        raise translate(err, f"kms:EnableKeyRotation {key_id}") from err


def rotation_enabled(member: Member, key_id: str) -> bool:
    kms: KMSClient = member.client("kms")
    try:
        return bool(kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled"))
    except ClientError as err:
        raise translate(err, f"kms:GetKeyRotationStatus {key_id} in {member.account_id}") from err


def statement_present(member: Member, key_id: str, role_name: str) -> bool:
    """Whether the key's policy already has mlplane's statement for the role (PatchKmsPolicy would not change it)."""
    kms: KMSClient = member.client("kms")
    try:
        current: dict[str, Any] = json.loads(str(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]))
    except ClientError as err:
        raise translate(err, f"kms:GetKeyPolicy {key_id} in {member.account_id}") from err
    role = aws.role_arn(member.account_id, role_name, region=member.region)
    statement = key_policy.credential_statement(role)
    return key_policy.merge_statement(current, statement) == current


# -- K2: PatchKmsPolicy -----------------------------------------------------------------------------------
def poll_patch_policy(member: Member, settings: Settings, attempt: int) -> PollOutput:
    """One try of PatchKmsPolicy's wait loop: ready once the key policy holds mlplane's statement.

    KMS refuses a role IAM created a minute or two ago (PrincipalNotPropagated): the loop waits one poll
    interval and tries again, up to `kms_propagation_timeout_seconds` (counted in polls, like every wait
    loop), then gives up with TimedOut. Any other error is raised as `patch_policy` raises it.
    """
    try:
        output = patch_policy(member, settings)
    except PrincipalNotPropagated as err:
        timeout = settings.kms_propagation_timeout_seconds
        if settings.timed_out(attempt, timeout):
            raise TimedOut(f"{err}; still refused after {timeout} s") from err
        logger.info("credential role not yet a valid KMS principal", attempt=attempt)
        return PollOutput(ready=False, attempt=attempt + 1, detail=str(err))
    key_id = output.detail.get("key_id", "")
    done = "patched" if output.created else "already held mlplane's statement"
    return PollOutput(ready=True, attempt=attempt + 1, detail=f"key policy of {key_id} {done}")


def patch_policy(member: Member, settings: Settings) -> StepOutput:
    """K2: merge mlplane's statement for credential-service-role into the vault key's policy.

    The previous policy is saved in the ledger before PutKeyPolicy. A policy that would lock the account out
    of the key is refused before any change (ConfigError). KMS rejects a principal IAM has not finished
    propagating (MalformedPolicyDocumentException): when GetRole shows the role exists, that is
    PrincipalNotPropagated (a TransientError that `poll_patch_policy` waits out); otherwise a real error.
    """
    alias = settings.vault_key_alias
    found = find_key(member, alias)
    if found is None:
        raise Conflict(f"vault key {alias} not found in {member.account_id}")
    kms: KMSClient = member.client("kms")
    key_id = found.key_id
    partition = aws.partition_for(member.region)
    role = aws.role_arn(member.account_id, settings.credential_role_name, region=member.region)
    try:
        current_text = str(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    except ClientError as err:
        raise translate(err, f"kms:GetKeyPolicy {key_id}") from err
    patch = key_policy.plan_patch(
        json.loads(current_text), role_arn=role, account_id=member.account_id, key_id=key_id, partition=partition
    )
    detail: dict[str, Any] = {"key_id": key_id, "sid": patch.sid, "role_arn": role}
    if not patch.changed:
        return StepOutput(existing=1, detail=detail)
    member.ledger.record_intent(  # keeps the first saved policy if an earlier attempt recorded it
        member.account_id,
        key=POLICY_KEY,
        type=POLICY_TYPE,
        step=member.step,
        execution=member.execution,
        data={"key_id": key_id, "previous_policy": current_text},
    )
    try:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy.policy_text(patch.policy))
    except ClientError as err:
        if error_code(err) == "MalformedPolicyDocumentException" and _role_exists(
            member, settings.credential_role_name
        ):
            raise PrincipalNotPropagated(
                f"kms:PutKeyPolicy {key_id}: role {settings.credential_role_name} in {member.account_id}"
                " is not yet usable as a principal"
            ) from err
        raise translate(err, f"kms:PutKeyPolicy {key_id} in {member.account_id}") from err
    member.ledger.record_created(member.account_id, key=POLICY_KEY, resource_id=key_id)
    logger.info("vault key policy patched", key_id=key_id, sid=patch.sid, size=patch.size)
    return StepOutput(created=1, detail=detail)


def _role_exists(member: Member, role_name: str) -> bool:
    iam: IAMClient = member.client("iam")
    try:
        iam.get_role(RoleName=role_name)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise translate(err, f"iam:GetRole {role_name} in {member.account_id}") from err
    return True


# -- rollback handlers ------------------------------------------------------------------------------------
def _find_key_record(member: Member, record: ResourceRecord) -> str | None:
    return _find_tagged_key(member, record.key)


def _undo_key(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    kms: KMSClient = member.client("kms")
    try:
        meta = kms.describe_key(KeyId=resource_id)["KeyMetadata"]
        if meta.get("KeyState") == "PendingDeletion":
            return _deferred(resource_id, meta.get("DeletionDate"))
        if not _owned(_key_tags(kms, resource_id), member.account_id):
            raise Blocked(f"kms key {resource_id} in {member.account_id} no longer carries mlplane's tags")
        answer = kms.schedule_key_deletion(KeyId=resource_id, PendingWindowInDays=DELETION_WINDOW_DAYS)
    except ClientError as err:
        code = error_code(err)
        if code == "NotFoundException":
            return Undone("gone")
        if code == "KMSInvalidStateException":
            # Scheduled by another attempt since DescribeKey (a re-run racing this one): KMS refuses a second
            # ScheduleKeyDeletion; the key is on its way out all the same.
            state = _key_state(kms, resource_id)
            if state is not None and state[0] == "PendingDeletion":
                return _deferred(resource_id, state[1])
        raise translate(err, f"kms:ScheduleKeyDeletion {resource_id}") from err
    return _deferred(resource_id, answer.get("DeletionDate"))


def _key_state(kms: KMSClient, key_id: str) -> tuple[str, datetime | None] | None:
    try:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError:
        return None
    return str(meta.get("KeyState", "")), meta.get("DeletionDate")


def _deferred(key_id: str, when: datetime | None) -> Undone:
    date = when.strftime("%Y-%m-%d") if when is not None else f"in {DELETION_WINDOW_DAYS} days"
    return Undone(
        "deferred", reason=f"KMS key {key_id} scheduled for deletion on {date}; AWS cannot delete a key at once"
    )


def _find_alias(member: Member, record: ResourceRecord) -> str | None:
    alias = str(record.data.get("alias", ""))
    target = find_key(member, alias) if alias else None
    return alias if target is not None and target.key_id == record.data.get("key_id") else None


def _undo_alias(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    target = find_key(member, resource_id)
    if target is None:
        return Undone("gone")
    if target.key_id != record.data.get("key_id"):
        return Undone("gone", reason=f"alias {resource_id} now names key {target.key_id}, not mlplane's; left in place")
    kms: KMSClient = member.client("kms")
    try:
        kms.delete_alias(AliasName=resource_id)
    except ClientError as err:
        if error_code(err) == "NotFoundException":
            return Undone("gone")
        raise translate(err, f"kms:DeleteAlias {resource_id}") from err
    return Undone("removed")


def _find_policy_record(member: Member, record: ResourceRecord) -> str | None:
    key_id = str(record.data.get("key_id", ""))
    kms: KMSClient = member.client("kms")
    try:
        kms.describe_key(KeyId=key_id)
    except ClientError as err:
        if error_code(err) == "NotFoundException":
            return None
        raise translate(err, f"kms:DescribeKey {key_id}") from err
    return key_id


def _undo_policy(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    """Put back the policy saved before the patch; if someone changed it since, remove only mlplane's Sid."""
    kms: KMSClient = member.client("kms")
    previous_text = str(record.data.get("previous_policy", ""))
    try:
        current = json.loads(kms.get_key_policy(KeyId=resource_id, PolicyName="default")["Policy"])
    except ClientError as err:
        if error_code(err) in _GONE_CODES:
            return Undone("gone")
        raise translate(err, f"kms:GetKeyPolicy {resource_id}") from err
    previous = json.loads(previous_text)
    sid = key_policy.MLPLANE_SID
    reason = ""
    if key_policy.remove_statement(current, sid) == key_policy.remove_statement(previous, sid):
        target, target_text = previous, previous_text
    else:
        target = key_policy.remove_statement(current, sid)
        target_text = key_policy.policy_text(target)
        reason = f"key policy of {resource_id} changed since mlplane patched it: removed only {sid}"
    if target == current:
        return Undone("gone", reason=reason)
    try:
        kms.put_key_policy(KeyId=resource_id, PolicyName="default", Policy=target_text)
    except ClientError as err:
        raise translate(err, f"kms:PutKeyPolicy {resource_id}") from err
    return Undone("removed", reason=reason)


HANDLERS = {
    KEY_TYPE: Handler(find=_find_key_record, undo=_undo_key, release=_release_key),
    ALIAS_TYPE: Handler(find=_find_alias, undo=_undo_alias),
    POLICY_TYPE: Handler(find=_find_policy_record, undo=_undo_policy),
}
"""The undo handlers of the kms:* ledger types (`mlplane.rollback.registry`): deprovision restores the key
policy, deletes the alias, and schedules deletion of the key only if mlplane created it."""
