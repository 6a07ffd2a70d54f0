"""The vault key and PatchKmsPolicy against moto with the sandbox's fidelity rules (REQUIREMENTS K1, K2, C3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from moto.kms.models import kms_backends

from mlplane.config import Settings
from mlplane.errors import AwsCallFailed, Blocked, ConfigError, TimedOut, TransientError
from mlplane.kms import apply
from mlplane.kms import policy as key_policy
from mlplane.kms.policy import MLPLANE_SID, ROOT_SID, credential_statement, default_key_policy
from mlplane.ledger import ResourceState
from mlplane.member import Member
from mlplane.rollback.run import teardown
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import iam_kms
from mlplane_sandbox.fidelity.iam_kms import DEFAULT_ROLE_PROPAGATION_SECONDS

from .conftest import MEMBER, REGION, place_role

Calls = Callable[[str, str], list[dict[str, object]]]
ALIAS = "alias/aac-secure-vault"
ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/credential-service-role"
ROOT = f"arn:aws:iam::{MEMBER}:root"


def _policy(member: Member, key_id: str) -> dict[str, Any]:
    return dict(json.loads(member.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]))


def _vendor_role(member: Member, clock: VirtualClock) -> None:
    """The vendor creates credential-service-role with CreateRole; KMS accepts it once IAM has propagated it."""
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    clock.advance(DEFAULT_ROLE_PROPAGATION_SECONDS)


def test_k1_creates_the_key_with_rotation_tags_root_policy_and_alias(member: Member, settings: Settings) -> None:
    output = apply.ensure_key(member, settings)
    assert output.created == 2
    kms = member.client("kms")
    meta = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    key_id = meta["KeyId"]
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    assert tags["mlplane:managed"] == "true" and tags["mlplane:key"] == "kms/key"
    statements = _policy(member, key_id)["Statement"]
    assert statements == [
        {"Sid": ROOT_SID, "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    ]
    assert [(r.type, r.resource_id) for r in member.ledger.resources(MEMBER)] == [
        ("kms:key", key_id),
        ("kms:alias", ALIAS),
    ]


def test_k1_rerun_and_existing_key_create_nothing(member: Member, settings: Settings, calls: Calls) -> None:
    apply.ensure_key(member, settings)
    again = apply.ensure_key(member, settings)
    assert (again.created, again.existing) == (0, 1)
    assert len(calls("kms", "CreateKey")) == 1 and len(calls("kms", "CreateAlias")) == 1


def test_k1_key_found_by_alias_is_used_and_not_recorded(member: Member, settings: Settings, calls: Calls) -> None:
    kms = member.client("kms")
    theirs = kms.create_key(Description="made on the prerequisite page")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=theirs)
    output = apply.ensure_key(member, settings)
    assert output.detail == {"key_id": theirs, "alias": ALIAS, "owned": False}
    assert calls("kms", "CreateKey") == [{"Description": "made on the prerequisite page"}]
    assert member.ledger.resources(MEMBER) == []
    teardown(member, "kms", apply.HANDLERS)
    assert kms.describe_key(KeyId=theirs)["KeyMetadata"]["KeyState"] == "Enabled"


def test_k2_merges_the_role_statement_keeping_the_root_statement(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    before = member.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    _vendor_role(member, sandbox)
    output = apply.patch_policy(member, settings)
    assert output.created == 1
    statements = _policy(member, key_id)["Statement"]
    assert [s["Sid"] for s in statements] == [ROOT_SID, MLPLANE_SID]
    assert statements[1] == credential_statement(ROLE_ARN)
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None and record.type == "kms:key-policy" and record.state == ResourceState.CREATED
    assert record.data == {"key_id": key_id, "previous_policy": before}


def test_k2_rerun_makes_no_put_key_policy_call(
    member: Member, settings: Settings, sandbox: VirtualClock, calls: Calls
) -> None:
    apply.ensure_key(member, settings)
    _vendor_role(member, sandbox)
    apply.patch_policy(member, settings)
    again = apply.patch_policy(member, settings)
    assert (again.created, again.existing) == (0, 1)
    assert len(calls("kms", "PutKeyPolicy")) == 1


def test_k2_just_created_role_is_a_transient_error_then_succeeds(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    """IAM eventual consistency: KMS rejects a principal created seconds ago; the state machine retries."""
    apply.ensure_key(member, settings)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    with pytest.raises(TransientError, match="not yet usable"):
        apply.patch_policy(member, settings)
    sandbox.advance(DEFAULT_ROLE_PROPAGATION_SECONDS)
    assert apply.patch_policy(member, settings).created == 1


def test_k2_absent_role_is_a_real_error_and_previous_policy_was_saved_first(member: Member, settings: Settings) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    before = member.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    with pytest.raises(AwsCallFailed, match="MalformedPolicyDocumentException"):
        apply.patch_policy(member, settings)
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None and record.state == ResourceState.INTENT
    assert record.data["previous_policy"] == before
    assert _policy(member, key_id)["Statement"][0]["Sid"] == ROOT_SID


def test_k2_a_policy_that_would_lock_out_the_account_is_refused_with_no_call(
    member: Member, settings: Settings, sandbox: VirtualClock, calls: Calls
) -> None:
    """A key whose policy already grants nobody administration: mlplane will not touch it."""
    kms = member.client("kms")
    place_role(MEMBER, "credential-service-role")
    usage_only = {"Version": "2012-10-17", "Statement": [credential_statement(ROLE_ARN, sid="use")]}
    key_id = kms.create_key(Policy=json.dumps(usage_only), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    with pytest.raises(ConfigError, match="kms:PutKeyPolicy"):
        apply.patch_policy(member, settings)
    assert calls("kms", "PutKeyPolicy") == []
    assert member.ledger.resource(MEMBER, apply.POLICY_KEY) is None


def test_k2_undo_restores_the_previous_policy_exactly(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    kms = member.client("kms")
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    _vendor_role(member, sandbox)
    apply.patch_policy(member, settings)
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None
    assert apply.HANDLERS["kms:key-policy"].undo(member, record, key_id).outcome == "removed"
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == before
    assert apply.HANDLERS["kms:key-policy"].undo(member, record, key_id).outcome == "gone"


def test_k2_undo_after_someone_else_changed_the_policy_removes_only_ours(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    _vendor_role(member, sandbox)
    apply.patch_policy(member, settings)
    kms = member.client("kms")
    changed = _policy(member, key_id)
    theirs = {"Sid": "theirs", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:Decrypt", "Resource": "*"}
    changed["Statement"].append(theirs)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(changed))
    record = member.ledger.resource(MEMBER, apply.POLICY_KEY)
    assert record is not None
    undone = apply.HANDLERS["kms:key-policy"].undo(member, record, key_id)
    assert undone.outcome == "removed" and "removed only" in undone.reason
    assert [s["Sid"] for s in _policy(member, key_id)["Statement"]] == [ROOT_SID, "theirs"]


def test_c4_teardown_restores_policy_deletes_alias_and_schedules_key_deletion(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    _vendor_role(member, sandbox)
    apply.patch_policy(member, settings)
    output = teardown(member, "kms", apply.HANDLERS)
    assert output.removed == 2  # the key-policy statement and the alias
    (deferred,) = output.detail["deferred"]
    assert (deferred["type"], deferred["id"]) == ("kms:key", key_id)
    reason = deferred["reason"]
    assert reason.startswith(f"KMS key {key_id} scheduled for deletion on ")
    assert reason.endswith("; AWS cannot delete a key at once")
    kms = member.client("kms")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.list_aliases(KeyId=key_id)["Aliases"] == []
    assert member.ledger.resources(MEMBER) == []
    assert [r.key for r in member.ledger.deferred(MEMBER)] == ["kms/key"]
    assert teardown(member, "kms", apply.HANDLERS).removed == 0


def test_c3_key_undo_refuses_a_key_without_mlplane_tags(member: Member, settings: Settings) -> None:
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    member.client("kms").untag_resource(KeyId=key_id, TagKeys=["mlplane:managed"])
    record = member.ledger.resource(MEMBER, apply.KEY_KEY)
    assert record is not None
    with pytest.raises(Blocked, match="no longer carries mlplane's tags"):
        apply.HANDLERS["kms:key"].undo(member, record, key_id)


# -- round 2 (issue 12) ------------------------------------------------------------------------------------
def test_k2_poll_waits_while_kms_refuses_the_new_role_then_succeeds(
    member: Member, settings: Settings, sandbox: VirtualClock, calls: Calls
) -> None:
    """PatchKmsPolicy is a wait loop: not ready while KMS refuses the role, ready once it accepts it."""
    apply.ensure_key(member, settings)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    waiting = apply.poll_patch_policy(member, settings, 0)
    assert (waiting.ready, waiting.attempt) == (False, 1) and "not yet usable" in waiting.detail
    sandbox.advance(DEFAULT_ROLE_PROPAGATION_SECONDS)
    done = apply.poll_patch_policy(member, settings, 1)
    assert (done.ready, done.attempt) == (True, 2) and "patched" in done.detail
    found = apply.find_key(member, ALIAS)
    assert found is not None
    assert [s["Sid"] for s in _policy(member, found.key_id)["Statement"]] == [ROOT_SID, MLPLANE_SID]
    assert len(calls("kms", "PutKeyPolicy")) == 2  # one refused, one accepted


def test_k2_poll_gives_up_after_the_configured_timeout(member: Member, sandbox: VirtualClock) -> None:
    """The budget is `kms_propagation_timeout_seconds`, counted in polls of `poll_interval_seconds`."""
    settings = Settings(ledger_table="mlplane-ledger", kms_propagation_timeout_seconds=300, poll_interval_seconds=60)
    apply.ensure_key(member, settings)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    iam_kms.configure(role_propagation_seconds=10_000)
    for attempt in range(settings.max_polls(300)):  # 5 polls after 0, 60, ..., 240 s of waiting
        assert apply.poll_patch_policy(member, settings, attempt).ready is False
        sandbox.advance(60)
    with pytest.raises(TimedOut, match="still refused after 300 s"):
        apply.poll_patch_policy(member, settings, settings.max_polls(300))


def test_k2_patch_sends_the_compact_document_whose_size_it_checked(
    member: Member, settings: Settings, calls: Calls
) -> None:
    """KMS counts every byte of the document it is sent against 32,768 (KMS quotas). mlplane checks the
    compact form; a policy that fits compact but not spaced must be sent compact, not refused by KMS."""
    kms = member.client("kms")
    place_role(MEMBER, "credential-service-role")
    statements = [
        {"Sid": f"reader-{i:03d}", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:Decrypt",
         "Resource": "*"}
        for i in range(240)
    ]  # fmt: skip
    existing = {"Version": "2012-10-17", "Statement": [*default_key_policy(MEMBER)["Statement"], *statements]}
    merged = {**existing, "Statement": [*existing["Statement"], credential_statement(ROLE_ARN)]}
    assert key_policy.policy_size(merged) <= key_policy.KEY_POLICY_LIMIT < len(json.dumps(merged))
    key_id = kms.create_key(Policy=key_policy.policy_text(existing))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    assert apply.patch_policy(member, settings).created == 1
    (sent,) = [str(c["Policy"]) for c in calls("kms", "PutKeyPolicy")]
    assert len(sent.encode("utf-8")) == key_policy.policy_size(merged) and json.loads(sent) == merged


def test_c4_undo_of_a_key_already_pending_deletion_is_deferred_without_a_second_schedule(
    member: Member, settings: Settings, calls: Calls
) -> None:
    """A rollback re-run (a crash after ScheduleKeyDeletion, before the ledger write) meets a key KMS will not
    schedule twice (KMSInvalidStateException): the undo is deferred again, not failed."""
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    record = member.ledger.resource(MEMBER, apply.KEY_KEY)
    assert record is not None
    first = apply.HANDLERS["kms:key"].undo(member, record, key_id)
    again = apply.HANDLERS["kms:key"].undo(member, record, key_id)
    assert (first.outcome, again.outcome) == ("deferred", "deferred")
    assert again.reason == first.reason
    assert len(calls("kms", "ScheduleKeyDeletion")) == 1


def test_c4_undo_racing_another_schedule_of_the_same_key_is_deferred(
    member: Member, settings: Settings, calls: Calls
) -> None:
    """Between DescribeKey (Enabled) and ScheduleKeyDeletion another attempt schedules the key: KMS answers
    KMSInvalidStateException ("<key ARN> is pending deletion."), and the key is on its way out all the same."""
    key_id = apply.ensure_key(member, settings).detail["key_id"]
    record = member.ledger.resource(MEMBER, apply.KEY_KEY)
    assert record is not None
    kms = member.client("kms")

    def scheduled_by_someone_else(**_: object) -> None:
        kms_backends[MEMBER][REGION].schedule_key_deletion(key_id, 30)

    kms.meta.events.register_first("before-call.kms.ScheduleKeyDeletion", scheduled_by_someone_else)
    try:
        undone = apply.HANDLERS["kms:key"].undo(member, record, key_id)
    finally:
        kms.meta.events.unregister("before-call.kms.ScheduleKeyDeletion", scheduled_by_someone_else)
    assert undone.outcome == "deferred"
    assert [c["KeyId"] for c in calls("kms", "ScheduleKeyDeletion")] == [key_id]
