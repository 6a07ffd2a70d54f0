"""CreateIam against moto with the sandbox's fidelity rules (REQUIREMENTS I1, I2, C3, C6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mlplane.config import Settings
from mlplane.errors import Blocked, ConfigError
from mlplane.iam import access_key, apply
from mlplane.iam.policy import shipped_policy
from mlplane.ledger import ResourceState
from mlplane.member import Member
from mlplane.rollback.run import teardown

from .conftest import MEMBER, SSH_KEY

IAM_HANDLERS = {**apply.HANDLERS, **access_key.HANDLERS}  # what RemoveIam tears down

Calls = Callable[[str, str], list[dict[str, object]]]
ARN = f"arn:aws:iam::{MEMBER}:policy/AAC_MachineLearning_SA_Policy"
USER = "aac_automation_sa"


def _rollback(member: Member) -> list[str]:
    """What the rollback walker does: live records newest first, each through its registered handler."""
    outcomes = []
    for record in sorted(member.ledger.resources(MEMBER), key=lambda r: r.seq, reverse=True):
        handler = IAM_HANDLERS[record.type]
        resource_id = record.resource_id or handler.find(member, record)
        if resource_id:
            outcomes.append(f"{record.type}:{handler.undo(member, record, resource_id).outcome}")
        member.ledger.record_deleted(MEMBER, key=record.key)
    return outcomes


def test_i1_i2_creates_tagged_user_and_policy_and_attaches_it(member: Member, settings: Settings, calls: Calls) -> None:
    output = apply.run(member, settings)
    assert (output.created, output.existing) == (3, 0)
    iam = member.client("iam")
    user_tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=USER)["Tags"]}
    assert user_tags["mlplane:managed"] == "true" and user_tags["mlplane:account"] == MEMBER
    assert user_tags["AACResource"] == "aac_iam_user"  # I4, on create: no separate TagUser
    assert calls("iam", "TagUser") == []
    policy = iam.get_policy(PolicyArn=ARN)["Policy"]
    document = iam.get_policy_version(PolicyArn=ARN, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    assert document == shipped_policy()
    policy_tags = {t["Key"]: t["Value"] for t in iam.list_policy_tags(PolicyArn=ARN)["Tags"]}
    assert policy_tags["AACResource"] == "aac_sa_custom_policy" and policy_tags["mlplane:managed"] == "true"
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"]]
    assert attached == [ARN]
    assert iam.list_access_keys(UserName=USER)["AccessKeyMetadata"] == []  # I1: never access keys
    assert calls("iam", "CreateAccessKey") == []
    records = member.ledger.resources(MEMBER)
    assert [(r.type, r.state) for r in records] == [
        ("iam:user", ResourceState.CREATED),
        ("iam:policy", ResourceState.CREATED),
        ("iam:attachment", ResourceState.CREATED),
    ]


def test_i1_i2_rerun_changes_nothing(member: Member, settings: Settings, calls: Calls) -> None:
    apply.run(member, settings)
    before = {
        op: len(calls("iam", op)) for op in ("CreateUser", "CreatePolicy", "CreatePolicyVersion", "AttachUserPolicy")
    }
    assert before == {"CreateUser": 1, "CreatePolicy": 1, "CreatePolicyVersion": 0, "AttachUserPolicy": 1}
    again = apply.run(member, settings)
    assert (again.created, again.existing) == (0, 3)
    after = {op: len(calls("iam", op)) for op in before}
    assert after == before
    assert len(member.client("iam").list_policy_versions(PolicyArn=ARN)["Versions"]) == 1


def test_i1_existing_user_is_reused_and_never_recorded_or_removed(member: Member, settings: Settings) -> None:
    iam = member.client("iam")
    iam.create_user(UserName=USER)
    iam.create_access_key(UserName=USER)  # the operator's, from the prerequisite page
    output = apply.run(member, settings)
    assert output.detail["user_action"] == "reuse"
    assert (output.created, output.existing) == (2, 1)
    assert member.ledger.resource(MEMBER, apply.USER_KEY) is None
    teardown(member, "iam", IAM_HANDLERS)
    assert iam.get_user(UserName=USER)["User"]["UserName"] == USER
    assert iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"] == []
    assert len(iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]) == 1


def test_i2_prefix_is_checked_before_any_call(member: Member, settings: Settings, calls: Calls) -> None:
    bad = settings.model_copy(update={"sa_policy_name": "MyPolicy"})  # bypasses the settings validator
    with pytest.raises(ConfigError, match="must start with 'AAC_MachineLearning'"):
        apply.run(member, bad)
    assert calls("iam", "GetUser") == [] and calls("iam", "CreatePolicy") == []


def test_i2_changed_document_gets_a_new_default_version_within_five(member: Member, settings: Settings) -> None:
    """A policy someone made by hand with an older document, already at IAM's five versions."""
    iam = member.client("iam")
    old = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks:ListClusters", "Resource": "*"}]}
    iam.create_policy(PolicyName="AAC_MachineLearning_SA_Policy", PolicyDocument=json.dumps(old))
    for _ in range(4):
        iam.create_policy_version(PolicyArn=ARN, PolicyDocument=json.dumps(old), SetAsDefault=True)
    output = apply.run(member, settings)
    assert output.detail["policy_action"] == "update"
    versions = {v["VersionId"]: v["IsDefaultVersion"] for v in iam.list_policy_versions(PolicyArn=ARN)["Versions"]}
    assert len(versions) == 5 and "v1" not in versions and versions["v6"] is True
    assert iam.get_policy_version(PolicyArn=ARN, VersionId="v6")["PolicyVersion"]["Document"] == shipped_policy()
    tags = {t["Key"]: t["Value"] for t in iam.list_policy_tags(PolicyArn=ARN)["Tags"]}
    assert tags == {"AACResource": "aac_sa_custom_policy"}  # seed step 1b; not mlplane's, so no mlplane tags

    again = apply.run(member, settings)
    assert again.detail["policy_action"] == "keep"

    teardown(member, "iam", IAM_HANDLERS)  # not mlplane's policy: put back as it was, not deleted
    assert iam.get_policy(PolicyArn=ARN)["Policy"]["DefaultVersionId"] == "v5"
    assert sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=ARN)["Versions"]) == [
        "v2",
        "v3",
        "v4",
        "v5",
    ]
    assert iam.list_policy_tags(PolicyArn=ARN)["Tags"] == []


def test_i4_an_existing_service_account_is_tagged_and_its_tag_put_back_on_teardown(
    member: Member, settings: Settings
) -> None:
    """The vendor's prerequisite page (REQUIREMENTS I4) tags the service account AACResource=aac_iam_user; a
    user mlplane did not create is reused, tagged, and on teardown gets back the tag it had."""
    iam = member.client("iam")
    iam.create_user(UserName="aac_automation_sa", Tags=[{"Key": "AACResource", "Value": "old"}])
    apply.run(member, settings)
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="aac_automation_sa")["Tags"]}
    assert tags == {"AACResource": "aac_iam_user"}  # not mlplane's user, so no mlplane tags
    teardown(member, "iam", IAM_HANDLERS)
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["aac_automation_sa"]  # reused: never deleted
    assert iam.list_user_tags(UserName="aac_automation_sa")["Tags"] == [{"Key": "AACResource", "Value": "old"}]


def test_c3_rollback_detaches_then_deletes_policy_then_user(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    assert _rollback(member) == ["iam:attachment:removed", "iam:policy:removed", "iam:user:removed"]
    iam = member.client("iam")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert _rollback(member) == []  # nothing live is left: a second rollback does nothing


def test_c3_undo_is_idempotent_when_already_gone(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    records = {r.type: r for r in member.ledger.resources(MEMBER)}
    for kind in ("iam:attachment", "iam:policy", "iam:user"):
        record = records[kind]
        assert record.resource_id is not None
        assert IAM_HANDLERS[kind].undo(member, record, record.resource_id).outcome == "removed"
        assert IAM_HANDLERS[kind].undo(member, record, record.resource_id).outcome == "gone"


def test_c3_policy_attached_elsewhere_blocks_its_delete(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    iam = member.client("iam")
    iam.create_role(RoleName="someone-else", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName="someone-else", PolicyArn=ARN)
    with pytest.raises(Blocked, match="role someone-else"):
        teardown(member, "iam", IAM_HANDLERS)
    assert iam.get_policy(PolicyArn=ARN)["Policy"]["Arn"] == ARN  # left in place
    assert iam.list_users()["Users"] == []  # our attachment and user are undone all the same


def test_c3_user_with_someone_elses_access_key_is_left_and_named(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    iam = member.client("iam")
    key_id = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    with pytest.raises(Blocked, match=f"access key {key_id}"):
        teardown(member, "iam", IAM_HANDLERS)
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert iam.get_user(UserName=USER)["User"]["UserName"] == USER


def test_c6_crash_between_create_and_ledger_write_converges(
    member: Member, settings: Settings, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lambda dies after CreatePolicy succeeded, before the ledger write: the re-run finds it by its tags."""
    real = member.ledger.record_created
    died: list[str] = []

    def dying(account_id: str, *, key: str, resource_id: str, **kwargs: Any) -> object:
        if key == apply.POLICY_KEY and not died:
            died.append(key)
            raise RuntimeError("Lambda timed out")
        return real(account_id, key=key, resource_id=resource_id, **kwargs)

    monkeypatch.setattr(member.ledger, "record_created", dying)
    with pytest.raises(RuntimeError):
        apply.run(member, settings)
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None and record.state == ResourceState.INTENT
    assert IAM_HANDLERS["iam:policy"].find(member, record) == ARN  # rollback would find it too
    apply.run(member, settings)
    assert len(calls("iam", "CreatePolicy")) == 1
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None and (record.state, record.resource_id) == (ResourceState.CREATED, ARN)


# -- round 2 (issue 12) ------------------------------------------------------------------------------------
def test_c3_user_with_a_login_profile_or_ssh_key_is_left_named_and_never_deleted(
    member: Member, settings: Settings, calls: Calls
) -> None:
    """IAM refuses DeleteUser while the user has a password or an SSH key (DeleteConflict); those are someone
    else's (mlplane never gives the service account credentials): the undo is Blocked naming them, with no
    DeleteUser call that IAM would refuse."""
    apply.run(member, settings)
    iam = member.client("iam")
    iam.create_login_profile(UserName=USER, Password="A-long-enough-p4ssword!")
    ssh = iam.upload_ssh_public_key(UserName=USER, SSHPublicKeyBody=SSH_KEY)["SSHPublicKey"]["SSHPublicKeyId"]
    with pytest.raises(Blocked, match=rf"login profile \(console password\), SSH public key {ssh}"):
        teardown(member, "iam", IAM_HANDLERS)
    assert calls("iam", "DeleteUser") == []
    assert iam.get_user(UserName=USER)["User"]["UserName"] == USER
    assert iam.list_policies(Scope="Local")["Policies"] == []  # the rest was undone all the same


def test_c3_policy_with_an_extra_version_is_deleted_after_its_non_default_versions(
    member: Member, settings: Settings, calls: Calls
) -> None:
    """IAM refuses DeletePolicy while non-default versions exist (DeleteConflict): mlplane deletes them first."""
    apply.run(member, settings)
    iam = member.client("iam")
    iam.create_policy_version(PolicyArn=ARN, PolicyDocument=json.dumps(shipped_policy()), SetAsDefault=False)
    teardown(member, "iam", IAM_HANDLERS)
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert [c["VersionId"] for c in calls("iam", "DeletePolicyVersion")] == ["v2"]
    assert len(calls("iam", "DeletePolicy")) == 1
