"""Issue 5 in the sandbox: the seed's policy exactly, a key-policy patch that locks nobody out (I1-I3, K1-K2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane.kms.policy import CREDENTIAL_ACTIONS, MLPLANE_SID
from mlplane_sandbox.runner import Options, RunResult, Sandbox
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import Cli, RunSandbox, load_event, seed_policy_text

SUCCESS = "controltower/create_managed_account_succeeded"
ROOT = Path(__file__).resolve().parents[2]
MEMBER = "111111111111"
FAST = {"poll_interval_seconds": 600}
ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/credential-service-role"
# A vault key the account already had (the prerequisite page's step 5), with an extra admin statement.
EXISTING_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Allow key administrators",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:role/AWSControlTowerExecution"},
            "Action": ["kms:Describe*", "kms:Put*", "kms:Get*"],
            "Resource": "*",
        },
    ],
}


def run_with_existing_key(**options: Any) -> tuple[RunResult, str]:
    """A run on an account whose vault key (alias/aac-secure-vault) exists before mlplane comes."""
    options.setdefault("config", FAST)
    with Sandbox(Options(**options)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name="AWSControlTowerExecution")
        with as_account(MEMBER):
            kms = sandbox_client("kms")
            key_id = kms.create_key(Policy=json.dumps(EXISTING_POLICY), Description="secure vault")["KeyMetadata"][
                "KeyId"
            ]
            kms.create_alias(AliasName="alias/aac-secure-vault", TargetKeyId=key_id)
        return sandbox.run(load_event("controltower", "create_managed_account_succeeded")), key_id


def key_policy(result: RunResult, key_id: str) -> dict[str, Any]:
    (key,) = [k for k in result.inventory["kms_keys"] if k["id"] == key_id]
    policy: dict[str, Any] = key["policy"]
    return policy


def test_i1_i2_ready_account_has_the_seed_policy_exactly_tagged_and_attached(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST)
    assert result.outcome == "READY", result.error
    (policy,) = result.inventory["iam_policies"]
    assert policy["name"] == "AAC_MachineLearning_SA_Policy"
    assert policy["document"] == json.loads(seed_policy_text())
    assert policy["tags"]["AACResource"] == "aac_sa_custom_policy"
    (user,) = result.inventory["iam_users"]
    assert user["name"] == "aac_automation_sa"
    assert user["tags"]["AACResource"] == "aac_iam_user"  # I4: the vendor's prerequisite page
    assert user["attached_policy_arns"] == [policy["arn"]]
    assert not [c for c in result.api_calls if c["call"] == "iam:CreateAccessKey"]


def test_k1_k2_ready_key_policy_adds_the_role_statement_and_keeps_every_other() -> None:
    result, key_id = run_with_existing_key()
    assert result.outcome == "READY", result.error
    policy = key_policy(result, key_id)
    for statement in EXISTING_POLICY["Statement"]:
        assert statement in policy["Statement"]
    (ours,) = [s for s in policy["Statement"] if s.get("Sid") == MLPLANE_SID]
    assert ours["Principal"] == {"AWS": ROLE_ARN}  # a role, not the seed's :user/
    assert sorted(ours["Action"]) == sorted(CREDENTIAL_ACTIONS)
    assert len(result.inventory["kms_keys"]) == 1  # the existing key was used, none created


def test_k2_no_credential_role_never_puts_a_key_policy_and_leaves_it_as_it_was() -> None:
    # a 2-hour vendor timeout: the role never comes, and only the key policy matters here
    result, key_id = run_with_existing_key(vendor="no-credential-role", config={**FAST, "vendor_timeout_seconds": 7200})
    assert result.outcome == "ROLLBACK_HELD"  # the vendor's cluster is there (C7)
    assert result.error is not None and "credential-service-role" in result.error["message"]
    assert not [c for c in result.api_calls if c["call"] == "kms:PutKeyPolicy"]
    assert key_policy(result, key_id) == EXISTING_POLICY
    assert result.leftovers == []


def test_k2_failed_put_key_policy_is_held_and_leaves_the_policy_as_it_was() -> None:
    result, key_id = run_with_existing_key(fails=["kms:PutKeyPolicy"])
    assert result.outcome == "ROLLBACK_HELD"  # the vendor's cluster and role are there (C7)
    assert result.leftovers == []
    assert not [c for c in result.api_calls if c["call"].startswith(("iam:Delete", "ec2:Delete", "kms:Schedule"))]
    assert key_policy(result, key_id) == EXISTING_POLICY
    assert result.inventory["kms_keys"][0]["aliases"] == ["alias/aac-secure-vault"]  # not mlplane's: kept


def test_i2_access_denied_attaching_the_policy_rolls_back_iam(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=["iam:AttachUserPolicy=AccessDenied"])
    assert result.outcome == "ROLLED_BACK"
    assert result.error is not None and "AccessDenied" in result.error["message"]
    assert result.leftovers == []
    assert result.inventory["iam_policies"] == [] and result.inventory["iam_users"] == []
    attach = [c for c in result.api_calls if c["call"] == "iam:AttachUserPolicy"]
    assert attach and not any(c["ok"] for c in attach)


def test_i3_a_role_that_cannot_be_assumed_is_rejected_naming_role_and_account() -> None:
    # The account was vended with AWSControlTowerExecution; mlplane is configured to assume another role.
    with Sandbox(Options(config={"member_role_name": "NoSuchRole"}, absent=True)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name="AWSControlTowerExecution")
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "REJECTED"
    assert result.error is not None
    assert "NoSuchRole" in result.error["message"] and MEMBER in result.error["message"]
    assert not [c for c in result.api_calls if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:")]


# -- issue 12: KMS's propagation delay, and states KMS enforces during rollback ----------------------------
def _states_entered(result: RunResult) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    mlplane = str(Path(sys.executable).parent / "mlplane")
    return subprocess.run([mlplane, "local", "run", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_k2_kms_propagation_300_ends_ready_with_no_leftovers(cli: Cli) -> None:
    """`mlplane local run --kms-propagation 300`: KMS refuses the vendor's new role for five minutes
    (PutKeyPolicy: a new principal "might not be immediately visible"); PatchKmsPolicy's loop waits it out."""
    result = cli("local", "run", f"events/{SUCCESS}.json", "--kms-propagation", "300", "--json")
    assert result.exit_code == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["outcome"] == "READY", document["error"]
    assert document["leftovers"] == []
    puts = [c["ok"] for c in document["api_calls"] if c["call"] == "kms:PutKeyPolicy"]
    # Refused until the role is visible, then accepted. How many refusals are left depends on how long after the
    # role's creation the backed-off vendor waits notice it (up to 15 min, here longer than the 300 s): the
    # refusals themselves and the loop that waits them out are shown by test_k2_propagation_longer_than_the_budget
    # and tests/module/iam_kms/test_kms_apply.py.
    assert puts and not any(puts[:-1]) and puts[-1] is True
    (key,) = document["inventory"]["kms_keys"]
    assert any(s.get("Sid") == MLPLANE_SID for s in key["policy"]["Statement"])


def test_k2_default_kms_propagation_of_60_seconds_ends_ready() -> None:
    assert Options().kms_propagation_seconds == 60
    with Sandbox(Options()) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "READY", result.error
    assert result.leftovers == []
    assert [c["ok"] for c in result.api_calls if c["call"] == "kms:PutKeyPolicy"][-1] is True


def test_k2_propagation_longer_than_the_budget_times_out_and_is_held() -> None:
    """Past `kms_propagation_timeout_seconds` (here 600 s) PatchKmsPolicy gives up: TimedOut; the vendor's data
    plane is up by then, so the rollback is held (C7)."""
    config = {"kms_propagation_timeout_seconds": 600}
    with Sandbox(Options(config=config, kms_propagation_seconds=3_600)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "ROLLBACK_HELD"
    assert result.error is not None and result.error["type"] == "TimedOut"
    assert "still refused after 600 s" in result.error["message"]
    visited = _states_entered(result)
    assert visited.count("PatchKmsPolicy") == 11 and visited.count("KmsPolicyRetryDelay") == 10
    assert result.leftovers == []


@pytest.mark.parametrize("value", ["soon", "-5", "nan"])
def test_kms_propagation_flag_rejects_a_bad_value_with_exit_2(value: str) -> None:
    result = _cli(f"events/{SUCCESS}.json", "--kms-propagation", value, "--json")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "--kms-propagation" in result.stderr and "Traceback" not in result.stderr


def test_c4_rollback_rerun_on_a_key_already_pending_deletion_ends_rolled_back() -> None:
    """The Rollback Lambda dies right after ScheduleKeyDeletion; its retry meets a key KMS will not schedule
    again (KMSInvalidStateException, "Key states of AWS KMS keys"): the key is deferred, the rollback ends.
    (Denied quotas roll back the whole account before the hand-off; after it the rollback is held, C7.)"""
    options = Options(config=FAST, quota="denied", crashes=["kms:ScheduleKeyDeletion@1"])
    with Sandbox(options) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    (key,) = [k for k in result.inventory["kms_keys"] if k["aliases"] == []]
    assert [c["ok"] for c in result.api_calls if c["call"] == "kms:ScheduleKeyDeletion"] == [True]
    assert ("kms:key", key["id"]) in [(d["type"], d["id"]) for d in result.deferred]
    # The crash fired (an unfired one is a usage error) and the retried Rollback task finished the job.
    timed_out = [e for e in result.history if e.get("taskFailedEventDetails", {}).get("error") == "Sandbox.Timedout"]
    assert len(timed_out) == 1 and _states_entered(result).count("Rollback") == 1
