"""The service account's optional access key, kept only in Secrets Manager in the member account (REQUIREMENTS I4).

Only with `sa_access_key_secret_reader_role` set (stack parameter SaAccessKeySecretReaderRole); empty, this
module makes no call at all. Set, CreateIam creates one access key for the service account and at once the
secret `aac/<user>/access-key` holding it (encrypted with the vault key, mlplane's tags, a resource policy
letting only the named role GetSecretValue). Everything runs in the member session of the `access_key` purpose
(`session_policies/access_key.json`): it may create, list and delete the user's keys and manage only that secret;
it may not read the secret back.

The secret access key exists only in CreateAccessKey's answer and CreateSecret's request: never in a step output,
log, ledger record or notification. The ledger records the key's id (an identifier CloudTrail logs on every use,
not a credential) and the secret's ARN. A Lambda can die between the two calls (C6), and the secret half of a key
is returned once only; so each run first looks at what the secret holds (its `mlplane:access-key-id` tag) and at
the user's keys: a key of mlplane's that no secret holds is deleted, then a new one is created and stored. Which
keys are mlplane's: the one its ledger names and any the user gained after the ledger's intent recorded the keys
the user had before (IAM allows two per user, `LimitExceeded` beyond: someone else's two keys are named, never
deleted). Undo order, newest first: the secret, then the key (then the user, `mlplane.iam.apply`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.config import Settings
from mlplane.errors import Blocked, Conflict, error_code, translate
from mlplane.iam.apply import owned
from mlplane.ledger import ResourceState
from mlplane.member import KEY_TAG
from mlplane.observability import logger
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member

PURPOSE = "access_key"
KEY_TYPE = "iam:access-key"
SECRET_TYPE = "secretsmanager:secret"
KEY_KEY = "iam/access-key"
SECRET_KEY = "iam/access-key-secret"
KEY_ID_TAG = "mlplane:access-key-id"  # which key the secret holds (an id, not the secret half)
KEYS_PER_USER = 2  # IAM: "Access keys assigned to an IAM user: 2" (IAM and AWS STS quotas); LimitExceeded beyond


def secret_name(settings: Settings) -> str:
    return f"aac/{settings.sa_user_name}/access-key"


def reader_arn(settings: Settings, member: Member) -> str:
    role = settings.sa_access_key_secret_reader_role
    return role if role.startswith("arn:") else aws.role_arn(member.account_id, role, region=member.region)


def resource_policy(reader: str) -> dict[str, Any]:
    """GetSecretValue for the reader role only: allowed to it, denied to every other principal (even the account's
    administrators, whose IAM policies would otherwise allow it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReaderOnly",
                "Effect": "Allow",
                "Principal": {"AWS": reader},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            },
            {
                "Sid": "NoOtherReader",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": reader}},
            },
        ],
    }


# -- observe ------------------------------------------------------------------------------------------------------
def _describe(sm: SecretsManagerClient, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = dict(sm.describe_secret(SecretId=name))
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise translate(err, f"secretsmanager:DescribeSecret {name}") from err
    return None if found.get("DeletedDate") else found


def _tags(secret: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in secret.get("Tags", [])}


def _keys(iam: IAMClient, user: str) -> list[str]:
    try:
        return [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user).get("AccessKeyMetadata", [])]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return []
        raise translate(err, f"iam:ListAccessKeys {user}") from err


def _mlplanes(record: ResourceRecord | None, keys: list[str]) -> set[str]:
    """The user's keys mlplane made: the one its ledger names, and any the user gained since the intent."""
    if record is None or record.state == ResourceState.DELETED:
        return set()
    before = {str(k) for k in record.data.get("before", [])}
    ours = {k for k in keys if k not in before}
    if record.resource_id:
        ours.add(record.resource_id)
    return ours & set(keys)


# -- run ----------------------------------------------------------------------------------------------------------
def ensure(member: Member, settings: Settings) -> StepOutput:
    """CreateIam's access key and its secret, if configured; a re-run changes nothing. `member` is any purpose's:
    the work runs in the access_key session."""
    if not settings.sa_access_key_secret_reader_role:
        return StepOutput()  # no key, no Secrets Manager call at all
    member = member.for_purpose(PURPOSE)
    iam: IAMClient = member.client("iam")
    sm: SecretsManagerClient = member.client("secretsmanager")
    user, name = settings.sa_user_name, secret_name(settings)

    keys, stored = _settle(member, iam, sm, user, name)

    material: dict[str, str] = {}

    def create_key() -> str:
        if len(keys) >= KEYS_PER_USER:
            raise Conflict(
                f"iam user {user} in {member.account_id} already has {len(keys)} access keys ({', '.join(keys)}),"
                f" IAM's limit: not mlplane's to delete"
            )
        try:
            made = iam.create_access_key(UserName=user)["AccessKey"]
        except ClientError as err:
            raise translate(err, f"iam:CreateAccessKey {user} in {member.account_id}") from err
        material.update(AccessKeyId=made["AccessKeyId"], SecretAccessKey=made["SecretAccessKey"])
        return made["AccessKeyId"]

    before = sorted(k for k in keys if k != stored)
    key_id, key_made = member.ensure(
        key=KEY_KEY, type=KEY_TYPE, find=lambda: stored, create=create_key, data={"user_name": user, "before": before}
    )

    def find_secret() -> str | None:
        found = _describe(sm, name)
        if found is None or not owned(_tags(found), member.account_id) or _tags(found).get(KEY_ID_TAG) != key_id:
            return None
        return str(found["ARN"])

    def create_secret() -> str:
        if not material:  # cannot happen: a key without its secret was deleted above and made anew
            raise Conflict(f"access key {key_id} of {user} has no stored secret and no material to store")
        try:
            answer = sm.create_secret(
                Name=name,
                Description=f"Access key {key_id} of the AAC service account {user}, managed by mlplane",
                KmsKeyId=settings.vault_key_alias,
                SecretString=json.dumps(material),
                Tags=member.tag_list(SECRET_KEY, {KEY_ID_TAG: key_id}),  # type: ignore[arg-type]
            )
        except ClientError as err:
            raise translate(err, f"secretsmanager:CreateSecret {name} in {member.account_id}") from err
        return str(answer["ARN"])

    arn, secret_made = member.ensure(
        key=SECRET_KEY, type=SECRET_TYPE, find=find_secret, create=create_secret, data={"name": name}
    )
    material.clear()
    _ensure_policy(sm, arn, resource_policy(reader_arn(settings, member)))
    made = int(key_made) + int(secret_made)
    logger.info("access key stored", user=user, access_key_id=key_id, secret=arn, newly_created=made)
    return StepOutput(created=made, existing=2 - made, detail={"access_key_id": key_id, "access_key_secret": arn})


def _settle(
    member: Member, iam: IAMClient, sm: SecretsManagerClient, user: str, name: str
) -> tuple[list[str], str | None]:
    """What a crashed or changed earlier run left, made consistent: the user's keys and the one the secret holds.

    A secret whose key is gone is deleted (stale); a key of mlplane's that no secret holds is deleted (its secret
    half was returned once and is lost, C6). Someone else's secret of that name is a Conflict, never touched."""
    secret = _describe(sm, name)
    if secret is not None and not owned(_tags(secret), member.account_id):
        raise Conflict(f"secret {name} in {member.account_id} exists and is not mlplane's: not storing a key in it")
    keys = _keys(iam, user)
    stored = _tags(secret).get(KEY_ID_TAG) if secret is not None else None
    if secret is not None and stored not in keys:
        _delete_secret(sm, str(secret["ARN"]))
        member.ledger.record_deleted(member.account_id, key=SECRET_KEY)
        stored = None
    record = member.ledger.resource(member.account_id, KEY_KEY)
    for orphan in sorted(_mlplanes(record, keys) - {stored}):
        _delete_key(iam, user, orphan)
        keys.remove(orphan)
        logger.info("orphan access key deleted", user=user, access_key_id=orphan)
    if record is not None and record.resource_id and record.resource_id not in keys:
        member.ledger.record_deleted(member.account_id, key=KEY_KEY)
    return keys, stored


def _ensure_policy(sm: SecretsManagerClient, arn: str, policy: dict[str, Any]) -> None:
    try:
        current = sm.get_resource_policy(SecretId=arn).get("ResourcePolicy")
        if current and json.loads(current) == policy:
            return
        sm.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(policy), BlockPublicPolicy=True)
    except ClientError as err:
        raise translate(err, f"secretsmanager:PutResourcePolicy {arn}") from err


def _delete_key(iam: IAMClient, user: str, key_id: str) -> None:
    try:
        iam.delete_access_key(UserName=user, AccessKeyId=key_id)
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise translate(err, f"iam:DeleteAccessKey {key_id} of {user}") from err


def _delete_secret(sm: SecretsManagerClient, arn: str) -> None:
    """At once, without the 7-30 day recovery window: the key it holds is deleted with it, so a recovered secret
    would hold a dead credential, and a secret pending deletion keeps its name taken, so a re-provision within
    the window could not create it again (CreateSecret: InvalidRequestException)."""
    try:
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise translate(err, f"secretsmanager:DeleteSecret {arn}") from err


# -- rollback handlers --------------------------------------------------------------------------------------------
def _find_key(member: Member, record: ResourceRecord) -> str | None:
    user = str(record.data.get("user_name", ""))
    ours = sorted(_mlplanes(record, _keys(member.client("iam"), user))) if user else []
    return ours[0] if ours else None


def _undo_key(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    iam: IAMClient = member.client("iam")
    user = str(record.data.get("user_name", ""))
    keys = _keys(iam, user)
    for key_id in sorted(_mlplanes(record, keys) | ({resource_id} & set(keys))):
        _delete_key(iam, user, key_id)
    return Undone("removed" if resource_id in keys else "gone")


def _find_secret(member: Member, record: ResourceRecord) -> str | None:
    name = str(record.data.get("name", ""))
    found = _describe(member.client("secretsmanager"), name) if name else None
    if found is None or not owned(_tags(found), member.account_id) or _tags(found).get(KEY_TAG) != record.key:
        return None
    return str(found["ARN"])


def _undo_secret(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    sm: SecretsManagerClient = member.client("secretsmanager")
    found = _describe(sm, resource_id)
    if found is None:
        return Undone("gone")
    if not owned(_tags(found), member.account_id):
        raise Blocked(f"secret {resource_id} no longer carries mlplane's tags")
    _delete_secret(sm, resource_id)
    return Undone("removed")


HANDLERS = {
    SECRET_TYPE: Handler(find=_find_secret, undo=_undo_secret, purpose=PURPOSE),
    KEY_TYPE: Handler(find=_find_key, undo=_undo_key, purpose=PURPOSE),
}
"""Undo handlers of the access key and its secret, run in the access_key session: the secret (at once, without
recovery), then every key of the user that mlplane made."""
