"""The service account's optional access key, kept only in Secrets Manager (REQUIREMENTS I4, issue 14 D).

Through the real ASL: enabled (`sa_access_key_secret_reader_role`), CreateIam creates one access key and the
secret `aac/<user>/access-key` holding it, encrypted with the vault key, tagged as mlplane's, readable by the named
role only; the secret half of the key appears in no step output, ledger record, notification or log line.
Disabled (the default), no Secrets Manager call is made. A failure of each new create call rolls back to nothing;
a deprovision removes the secret, then the key, then the user; a re-run creates nothing; a crash on either side
of the secret write leaves neither a second key nor a key without its secret (C6).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mlplane.iam.access_key import KEY_ID_TAG, resource_policy, secret_name
from mlplane.member import MANAGED_TAG
from mlplane_sandbox import vendor
from mlplane_sandbox.runner import Options, RunResult, Sandbox, notifications
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import load_event

MEMBER = "111111111111"
READER = "aac-key-reader"
READER_ARN = f"arn:aws:iam::{MEMBER}:role/{READER}"
ENABLED = {"poll_interval_seconds": 600, "sa_access_key_secret_reader_role": READER}
NAME = "aac/aac_automation_sa/access-key"


def _success() -> dict[str, Any]:
    return load_event("controltower", "create_managed_account_succeeded")


def _keys() -> list[dict[str, Any]]:
    from moto.iam.models import iam_backends

    user = iam_backends[MEMBER]["global"].users.get("aac_automation_sa")
    return [] if user is None else [{"AccessKeyId": k.access_key_id} for k in user.access_keys]


def _secrets() -> list[dict[str, Any]]:
    with as_account(MEMBER):
        listed: list[dict[str, Any]] = sandbox_client("secretsmanager").list_secrets()["SecretList"]
        return listed


def _key_material() -> list[str]:
    """The secret halves of the service account's keys, as IAM holds them (moto's backend)."""
    from moto.iam.models import iam_backends

    user = iam_backends[MEMBER]["global"].users.get("aac_automation_sa")
    return [] if user is None else [k.secret_access_key for k in user.access_keys]


def _secretsmanager_calls(result: RunResult) -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"].startswith("secretsmanager:")]


@pytest.fixture
def enabled() -> Iterator[tuple[Sandbox, RunResult]]:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        yield sandbox, sandbox.run(_success())


def test_enabled_the_key_is_created_and_stored_only_in_the_secret(
    enabled: tuple[Sandbox, RunResult], capfd: pytest.CaptureFixture[str]
) -> None:
    sandbox, result = enabled
    assert result.outcome == "READY", result.error
    (key,) = _keys()
    (listed,) = _secrets()
    assert listed["Name"] == NAME == secret_name(sandbox.settings_from_env())
    with as_account(MEMBER):
        sm = sandbox_client("secretsmanager")
        described = sm.describe_secret(SecretId=NAME)
        stored = json.loads(sm.get_secret_value(SecretId=NAME)["SecretString"])
        policy = json.loads(sm.get_resource_policy(SecretId=NAME)["ResourcePolicy"])
    (material,) = _key_material()
    assert stored == {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": material}
    assert described["KmsKeyId"] == "alias/aac-secure-vault"  # the vault key (K1)
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags[MANAGED_TAG] == "true" and tags["mlplane:account"] == MEMBER and tags[KEY_ID_TAG] == key["AccessKeyId"]
    assert policy == resource_policy(READER_ARN)
    # Readable by the named role only: Allow to it, Deny to every other principal.
    allow, deny = policy["Statement"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"AWS": READER_ARN}
    assert allow["Action"] == "secretsmanager:GetSecretValue"
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": READER_ARN}}
    # The secret half appears nowhere mlplane writes: outputs (history), ledger, notifications, logs.
    ledger = sandbox.ledger()
    records = [r.model_dump(mode="json") for r in ledger.resources(MEMBER, live_only=False)]
    written = json.dumps([result.as_json(), result.history, records, notifications()], default=str)
    logs = capfd.readouterr()
    assert material not in written
    assert material not in logs.out and material not in logs.err
    assert key["AccessKeyId"] in written  # the key's id is recorded (an identifier, not a credential)
    # The inventory (`local run --json`) lists the key by id only and the secret; both recorded: no leftover.
    assert result.inventory["access_keys"] == [
        {"user": "aac_automation_sa", "id": key["AccessKeyId"], "status": "Active"}
    ]
    assert material not in json.dumps(result.inventory, default=str)
    assert [s["arn"] for s in result.inventory["secrets"]] == [listed["ARN"]]
    assert result.leftovers == []


def test_a_re_run_creates_nothing(enabled: tuple[Sandbox, RunResult]) -> None:
    sandbox, first = enabled
    assert first.outcome == "READY"
    keys, secrets = _keys(), _secrets()
    again = sandbox.run({"account_id": MEMBER, "requested_by": "test", "action": "reconcile"})
    assert again.outcome == "READY", again.error
    assert _keys() == keys and [s["ARN"] for s in _secrets()] == [s["ARN"] for s in secrets]
    creates = [
        c["call"] for c in again.api_calls if c["call"] in ("iam:CreateAccessKey", "secretsmanager:CreateSecret")
    ]
    assert creates == []


def test_disabled_makes_no_secrets_manager_call_and_no_key() -> None:
    with Sandbox(Options(config={"poll_interval_seconds": 600})) as sandbox:
        result = sandbox.run(_success())
    assert result.outcome == "READY", result.error
    assert _secretsmanager_calls(result) == []
    assert "iam:CreateAccessKey" not in [c["call"] for c in result.api_calls]


def test_deprovision_removes_the_secret_then_the_key_then_the_user(enabled: tuple[Sandbox, RunResult]) -> None:
    sandbox, result = enabled
    assert result.outcome == "READY"
    vendor.teardown(MEMBER)  # the AAC admin removed the data plane first
    done = sandbox.deprovision(MEMBER)
    assert done.outcome == "DEPROVISIONED", done.error
    assert _secrets() == [] and _keys() == []
    assert done.inventory["secrets"] == [] and done.inventory["access_keys"] == [] and done.leftovers == []
    from moto.iam.models import iam_backends

    assert "aac_automation_sa" not in iam_backends[MEMBER]["global"].users
    calls = [c["call"] for c in done.api_calls]
    order = [calls.index(c) for c in ("secretsmanager:DeleteSecret", "iam:DeleteAccessKey", "iam:DeleteUser")]
    assert order == sorted(order)
    (delete,) = [c for c in done.api_calls if c["call"] == "secretsmanager:DeleteSecret"]
    assert delete["ok"]


@pytest.mark.parametrize(
    "fault",
    [
        "iam:CreateAccessKey=LimitExceeded",  # e.g. someone else's keys took the user's two
        "secretsmanager:CreateSecret=EncryptionFailure",  # e.g. the vault key is not usable
        "secretsmanager:PutResourcePolicy=MalformedPolicyDocumentException",  # e.g. the reader role is gone
    ],
)
def test_a_failed_create_rolls_back_to_nothing(fault: str) -> None:
    with Sandbox(Options(config=ENABLED, fails=[fault])) as sandbox:
        result = sandbox.run(_success())
        sandbox.check_faults_fired()
        assert result.outcome == "ROLLED_BACK", result.error
        assert _secrets() == [] and _keys() == []
        assert result.inventory["secrets"] == [] and result.inventory["access_keys"] == []
        assert result.leftovers == []
        assert sandbox.ledger().resources(MEMBER) == []  # nothing left recorded either


@pytest.mark.parametrize("crash", ["iam:CreateAccessKey", "secretsmanager:CreateSecret"])
def test_a_crash_on_either_side_of_the_secret_write_leaves_one_stored_key(crash: str) -> None:
    """C6: after CreateAccessKey the secret half exists only in the dead Lambda: the re-run deletes that key and
    stores a new one; after CreateSecret the key is stored: the re-run finds both and records them."""
    with Sandbox(Options(config=ENABLED, crashes=[crash])) as sandbox:
        result = sandbox.run(_success())
        sandbox.check_faults_fired()
        assert result.outcome == "READY", result.error
        (key,) = _keys()
        (listed,) = _secrets()
        tags = {t["Key"]: t["Value"] for t in listed["Tags"]}
        assert tags[KEY_ID_TAG] == key["AccessKeyId"]
        records = {r.key: r for r in sandbox.ledger().resources(MEMBER)}
    assert records["iam/access-key"].resource_id == key["AccessKeyId"]
    assert records["iam/access-key-secret"].resource_id == listed["ARN"]
    deleted = [c for c in result.api_calls if c["call"] == "iam:DeleteAccessKey"]
    assert len(deleted) == (1 if crash == "iam:CreateAccessKey" else 0)
