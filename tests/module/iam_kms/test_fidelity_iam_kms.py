"""The sandbox refuses IAM, KMS and STS calls as AWS does where moto does not (REQUIREMENTS K2, I2, I3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlplane.iam.policy import shipped_policy
from mlplane.kms.policy import credential_statement, default_key_policy
from mlplane.member import Member
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import iam_kms

from .conftest import HUB, MEMBER, OTHER_MEMBER, REGION, SSH_KEY, place_role

ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/credential-service-role"


def _seed_literal(account: str, kind: str = "user") -> dict[str, Any]:
    """Seed 000 step 3 taken literally: the default statement deleted, the principal as written."""
    return {
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:{kind}/credential-service-role"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            }
        ],
    }


def _error(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response: Any = err.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def _key(member: Member) -> str:
    return str(member.client("kms").create_key()["KeyMetadata"]["KeyId"])


def test_k2_seed_literal_policy_is_refused_as_kms_refuses_it(member: Member) -> None:
    """The seed's `:user/credential-service-role` names no user: KMS rejects the principal."""
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")  # the vendor's role exists; the seed's user does not
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(_seed_literal(MEMBER)))
    assert _error(err) == ("MalformedPolicyDocumentException", iam_kms.INVALID_PRINCIPALS, 400)
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == default_key_policy(MEMBER)


def test_k2_deleting_the_default_statement_fails_the_lockout_check(member: Member) -> None:
    """Even with the principal corrected to the role, dropping the root statement locks the account out."""
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")
    policy = json.dumps(_seed_literal(MEMBER, kind="role"))
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    assert _error(err) == ("MalformedPolicyDocumentException", iam_kms.LOCKOUT, 400)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy, BypassPolicyLockoutSafetyCheck=True)
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == json.loads(policy)


def test_k2_merged_policy_with_root_statement_and_role_is_accepted(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(ROLE_ARN))
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def test_k2_lockout_check_accepts_a_grant_to_the_caller_role(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    caller = f"arn:aws:iam::{MEMBER}:role/AWSControlTowerExecution"
    policy: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller}, "Action": "kms:Put*", "Resource": "*"}],
    }
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    policy["Statement"][0]["Action"] = "kms:Decrypt"
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert _error(err)[1] == iam_kms.LOCKOUT


def test_k2_principal_in_another_account_must_exist_there(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(f"arn:aws:iam::{OTHER_MEMBER}:role/reader"))
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert _error(err)[1] == iam_kms.INVALID_PRINCIPALS
    place_role(OTHER_MEMBER, "reader")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def test_k2_create_key_with_an_invalid_principal_creates_no_key(member: Member) -> None:
    kms = member.client("kms")
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(ROLE_ARN))
    with pytest.raises(ClientError) as err:
        kms.create_key(Policy=json.dumps(policy))
    assert _error(err)[0] == "MalformedPolicyDocumentException"
    assert kms.list_keys()["Keys"] == []


def test_k2_new_role_is_a_valid_principal_only_after_propagation(member: Member, sandbox: VirtualClock) -> None:
    iam_kms.configure(role_propagation_seconds=30)
    kms = member.client("kms")
    key_id = _key(member)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    policy = json.dumps({**default_key_policy(MEMBER), "Statement": [
        *default_key_policy(MEMBER)["Statement"], credential_statement(ROLE_ARN)
    ]})  # fmt: skip
    sandbox.advance(29)
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    assert _error(err)[1] == iam_kms.INVALID_PRINCIPALS
    sandbox.advance(1)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)


def test_i2_delete_policy_while_attached_is_a_delete_conflict(member: Member) -> None:
    iam = member.client("iam")
    arn = iam.create_policy(PolicyName="AAC_MachineLearning_T", PolicyDocument=json.dumps(shipped_policy()))["Policy"][
        "Arn"
    ]
    iam.create_user(UserName="u")
    iam.attach_user_policy(UserName="u", PolicyArn=arn)
    with pytest.raises(ClientError) as err:
        iam.delete_policy(PolicyArn=arn)
    assert _error(err) == ("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    iam.detach_user_policy(UserName="u", PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    assert iam.list_policies(Scope="Local")["Policies"] == []


def test_i2_policy_over_6144_characters_without_whitespace_is_limit_exceeded(member: Member) -> None:
    iam = member.client("iam")
    padded = json.dumps(shipped_policy(), indent=12)  # far over 6,144 with whitespace, 4,545 without
    assert len(padded) > 6_144
    arn = iam.create_policy(PolicyName="AAC_MachineLearning_Ok", PolicyDocument=padded)["Policy"]["Arn"]
    big = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:" + "x" * 6_200, "Resource": "*"}]}
    with pytest.raises(ClientError) as err:
        iam.create_policy(PolicyName="AAC_MachineLearning_Big", PolicyDocument=json.dumps(big))
    assert _error(err) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144", 409)
    with pytest.raises(ClientError) as err:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(big), SetAsDefault=True)
    assert _error(err)[0] == "LimitExceeded"
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1


def test_i3_assume_role_of_a_missing_role_is_access_denied(member: Member) -> None:
    sts = boto3.client("sts", region_name=REGION)
    arn = f"arn:aws:iam::{OTHER_MEMBER}:role/AWSControlTowerExecution"
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=arn, RoleSessionName="test")
    code, message, status = _error(err)
    assert (code, status) == ("AccessDenied", 403)
    assert message == f"User: arn:aws:iam::{HUB}:root is not authorized to perform: sts:AssumeRole on resource: {arn}"
    place_role(OTHER_MEMBER, "AWSControlTowerExecution")
    assert sts.assume_role(RoleArn=arn, RoleSessionName="test")["AssumedRoleUser"]["Arn"].startswith("arn:aws:sts::")


def test_i3_assume_role_check_can_be_turned_off_for_fixtures(member: Member) -> None:
    iam_kms.configure(assume_role_check=False)
    sts = boto3.client("sts", region_name=REGION)
    sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_MEMBER}:role/nobody", RoleSessionName="test")


# -- round 2 (issue 12): timing, limits and states AWS enforces -------------------------------------------
def _policy_with_role() -> str:
    return json.dumps({**default_key_policy(MEMBER), "Statement": [
        *default_key_policy(MEMBER)["Statement"], credential_statement(ROLE_ARN)
    ]})  # fmt: skip


def test_k2_a_new_role_is_refused_for_60_seconds_by_default(member: Member, sandbox: VirtualClock) -> None:
    """PutKeyPolicy (KMS API reference, Policy): "The principals in the key policy must exist and be visible to
    KMS. When you create a new Amazon Web Services principal, you might need to enforce a delay before including
    the new principal in a key policy because the new principal might not be immediately visible to KMS."
    terraform-provider-aws retries for 2 minutes; the sandbox's default is a minute, not 5 s."""
    kms = member.client("kms")
    key_id = _key(member)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    sandbox.advance(iam_kms.DEFAULT_ROLE_PROPAGATION_SECONDS - 1)
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_with_role())
    assert _error(err) == ("MalformedPolicyDocumentException", iam_kms.INVALID_PRINCIPALS, 400)
    sandbox.advance(1)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_with_role())
    assert iam_kms.DEFAULT_ROLE_PROPAGATION_SECONDS == 60


def test_k2_a_role_noted_with_its_creation_time_counts_from_then(member: Member, sandbox: VirtualClock) -> None:
    """The vendor simulator's phases run when the clock passes their due time; KMS's delay counts from the
    moment IAM made the role (PutKeyPolicy: the new principal "might not be immediately visible")."""
    iam_kms.configure(role_propagation_seconds=60)
    kms = member.client("kms")
    key_id = _key(member)
    made_at = sandbox.now()
    sandbox.advance(45)  # the clock reaches the phase only now
    place_role(MEMBER, "credential-service-role")
    iam_kms.note_role_created(MEMBER, "credential-service-role", at=made_at)
    with pytest.raises(ClientError):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_with_role())
    sandbox.advance(15)  # 60 s after IAM made it, 15 s after the sandbox noticed
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_with_role())


def _padded_policy(size: int, *, indent: int | None = None) -> str:
    """The default key policy with a Sid padded so the document (as json.dumps writes it) is `size` bytes."""
    policy = default_key_policy(MEMBER)
    base = len(json.dumps(policy, indent=indent).encode("utf-8"))
    policy["Statement"][0]["Sid"] += "x" * (size - base)
    text = json.dumps(policy, indent=indent)
    assert len(text.encode("utf-8")) == size
    return text


def test_k2_key_policy_over_32768_bytes_is_limit_exceeded(member: Member) -> None:
    """KMS quotas page ("Key policy document size: 32 KB"; key policy format: "Up to 32 kilobytes (32,768
    bytes)") and PutKeyPolicy's API reference: "If the key policy exceeds the length constraint, KMS returns a
    LimitExceededException" (botocore kms/2014-11-01 service-2.json lists it for PutKeyPolicy and CreateKey).
    The document's own whitespace counts: it is what KMS stores."""
    kms = member.client("kms")
    key_id = _key(member)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_padded_policy(32_768))
    for too_big in (_padded_policy(32_769), _padded_policy(32_769, indent=4)):
        with pytest.raises(ClientError) as err:
            kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=too_big)
        code, message, status = _error(err)
        assert (code, status) == ("LimitExceededException", 400) and "32768" in message
        with pytest.raises(ClientError) as err:
            kms.create_key(Policy=too_big)
        assert _error(err)[0] == "LimitExceededException"
    assert len(kms.list_keys()["Keys"]) == 1
    assert len(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == 32_768


@pytest.mark.parametrize("days", [1, 6, 31, 365])
def test_k1_schedule_key_deletion_window_outside_7_to_30_days_is_refused(member: Member, days: int) -> None:
    """ScheduleKeyDeletion (KMS API reference, PendingWindowInDays): "If you include a value, it must be between
    7 and 30, inclusive." KMS answers ValidationException "PendingWindowInDays must be between 7 and 30";
    botocore's model allows 1-365, and moto ignores the call, leaving the key Enabled."""
    kms = member.client("kms")
    key_id = _key(member)
    with pytest.raises(ClientError) as err:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    assert _error(err) == ("ValidationException", "PendingWindowInDays must be between 7 and 30", 400)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def _pending_deletion_key(member: Member) -> tuple[str, str]:
    meta = member.client("kms").create_key()["KeyMetadata"]
    member.client("kms").schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=30)
    return str(meta["KeyId"]), str(meta["Arn"])


def test_k1_schedule_key_deletion_of_a_key_pending_deletion_is_invalid_state(member: Member) -> None:
    """KMS developer guide, "Key states of AWS KMS keys": ScheduleKeyDeletion on a key in PendingDeletion fails
    with "KMSInvalidStateException: <key ARN> is pending deletion." (botocore kms service-2.json lists
    KMSInvalidStateException for ScheduleKeyDeletion). moto re-schedules it and moves its deletion date."""
    kms = member.client("kms")
    key_id, arn = _pending_deletion_key(member)
    date = kms.describe_key(KeyId=key_id)["KeyMetadata"]["DeletionDate"]
    with pytest.raises(ClientError) as err:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert _error(err) == ("KMSInvalidStateException", f"{arn} is pending deletion.", 400)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["DeletionDate"] == date


def test_k1_enable_key_rotation_on_a_key_pending_deletion_is_invalid_state(member: Member) -> None:
    """KMS developer guide, "Key states of AWS KMS keys": EnableKeyRotation (and CreateAlias, TagResource,
    ...) on a key in PendingDeletion -> "KMSInvalidStateException: <key ARN> is pending deletion."; botocore
    kms service-2.json lists KMSInvalidStateException for EnableKeyRotation. The same table marks PutKeyPolicy,
    GetKeyPolicy, DescribeKey and DeleteAlias as succeeding on such a key, so the sandbox lets those through."""
    kms = member.client("kms")
    key_id, arn = _pending_deletion_key(member)
    for call in (
        lambda: kms.enable_key_rotation(KeyId=arn),
        lambda: kms.create_alias(AliasName="alias/late", TargetKeyId=key_id),
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k", "TagValue": "v"}]),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _error(err) == ("KMSInvalidStateException", f"{arn} is pending deletion.", 400)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(default_key_policy(MEMBER)))
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_i2_delete_policy_with_non_default_versions_is_a_delete_conflict(member: Member) -> None:
    """IAM DeletePolicy (API reference): "Before you can delete a managed policy, you must first detach the
    policy from all users, groups, and roles that it is attached to. In addition, you must delete all the
    policy's versions" (the default one goes with the policy); botocore iam service-2.json: DeleteConflict, 409.
    moto deletes the policy and its versions."""
    iam = member.client("iam")
    document = json.dumps(shipped_policy())
    arn = iam.create_policy(PolicyName="AAC_MachineLearning_V", PolicyDocument=document)["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    with pytest.raises(ClientError) as err:
        iam.delete_policy(PolicyArn=arn)
    assert _error(err) == ("DeleteConflict", iam_kms.POLICY_VERSIONS_CONFLICT, 409)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)
    assert iam.list_policies(Scope="Local")["Policies"] == []


@pytest.mark.parametrize("item", ["login profile", "access key", "SSH public key"])
def test_i2_delete_user_with_credentials_left_is_a_delete_conflict(member: Member, item: str) -> None:
    """IAM DeleteUser (API reference): "when you delete a user programmatically, you must delete the items
    attached to the user manually, or the deletion fails" - password (DeleteLoginProfile), access keys, signing
    certificates, SSH public keys, MFA devices, inline and attached policies, group memberships; botocore iam
    service-2.json: DeleteConflict, 409 ("Cannot delete entity, must delete login profile first."). moto checks
    only the policies."""
    iam = member.client("iam")
    iam.create_user(UserName="u")
    remove: Callable[[], object]
    if item == "login profile":
        iam.create_login_profile(UserName="u", Password="A-long-enough-p4ssword!")
        remove, message = lambda: iam.delete_login_profile(UserName="u"), "must delete login profile first"
    elif item == "access key":
        key = iam.create_access_key(UserName="u")["AccessKey"]["AccessKeyId"]
        remove, message = lambda: iam.delete_access_key(UserName="u", AccessKeyId=key), "must delete access keys first"
    else:
        ssh = iam.upload_ssh_public_key(UserName="u", SSHPublicKeyBody=SSH_KEY)["SSHPublicKey"]["SSHPublicKeyId"]
        remove = lambda: iam.delete_ssh_public_key(UserName="u", SSHPublicKeyId=ssh)  # noqa: E731
        message = "must remove referenced objects first"
    with pytest.raises(ClientError) as err:
        iam.delete_user(UserName="u")
    assert _error(err) == ("DeleteConflict", f"Cannot delete entity, {message}.", 409)
    assert iam.get_user(UserName="u")["User"]["UserName"] == "u"
    remove()
    iam.delete_user(UserName="u")
    assert iam.list_users()["Users"] == []
