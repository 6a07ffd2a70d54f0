"""The pure key-policy merge, lockout and size checks (REQUIREMENTS K2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlplane.errors import ConfigError
from mlplane.kms.policy import (
    CREDENTIAL_ACTIONS,
    MLPLANE_SID,
    administrators,
    check_lockout,
    credential_statement,
    default_key_policy,
    merge_statement,
    plan_patch,
    remove_statement,
)

ACCOUNT = "111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/credential-service-role"
ADMIN = {
    "Sid": "Allow access for Key Administrators",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/KeyAdmins"},
    "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:ScheduleKeyDeletion"],
    "Resource": "*",
}
# Seed 000 step 3 taken literally: the user principal, the default statement deleted ("..." dropped).
SEED_LITERAL: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "key-consolepolicy-3",
    "Statement": [
        {
            "Sid": "Allow use of the key",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/credential-service-role"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        }
    ],
}


def _with_admin() -> dict[str, Any]:
    policy = default_key_policy(ACCOUNT)
    policy["Statement"].append(copy.deepcopy(ADMIN))
    return policy


def test_k2_statement_grants_the_role_not_a_user_the_five_actions() -> None:
    statement = credential_statement(ROLE)
    assert statement["Principal"] == {"AWS": ROLE} and ":role/" in statement["Principal"]["AWS"]
    assert statement["Action"] == [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    ]
    assert tuple(statement["Action"]) == CREDENTIAL_ACTIONS
    assert (statement["Effect"], statement["Resource"], statement["Sid"]) == ("Allow", "*", MLPLANE_SID)


def test_k2_merge_keeps_every_statement_and_appends_ours() -> None:
    current = _with_admin()
    merged = merge_statement(current, credential_statement(ROLE))
    assert merged["Statement"][:2] == current["Statement"]
    assert merged["Statement"][2] == credential_statement(ROLE)
    assert (merged["Version"], merged["Id"]) == (current["Version"], current["Id"])
    assert current == _with_admin()  # the input is not modified


def test_k2_merge_updates_only_our_sid_in_place_and_is_idempotent() -> None:
    stale = credential_statement(f"arn:aws:iam::{ACCOUNT}:role/old")
    current = default_key_policy(ACCOUNT)
    current["Statement"] = [stale, *current["Statement"], copy.deepcopy(ADMIN)]
    merged = merge_statement(current, credential_statement(ROLE))
    assert [s["Sid"] for s in merged["Statement"]] == [MLPLANE_SID, "Enable IAM User Permissions", ADMIN["Sid"]]
    assert merged["Statement"][0]["Principal"] == {"AWS": ROLE}
    assert merge_statement(merged, credential_statement(ROLE)) == merged


def test_k2_single_statement_object_is_kept() -> None:
    policy = {"Version": "2012-10-17", "Statement": default_key_policy(ACCOUNT)["Statement"][0]}
    merged = merge_statement(policy, credential_statement(ROLE))
    assert len(merged["Statement"]) == 2


def test_k2_remove_statement_drops_only_ours() -> None:
    merged = merge_statement(_with_admin(), credential_statement(ROLE))
    assert remove_statement(merged, MLPLANE_SID) == _with_admin()


def test_k2_seed_literal_policy_is_refused_as_a_lockout() -> None:
    """Deleting the default statement leaves nobody able to administer the key: refused, one line."""
    with pytest.raises(ConfigError) as err:
        check_lockout(SEED_LITERAL, account_id=ACCOUNT)
    assert "kms:PutKeyPolicy" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("principal", "action", "expected"),
    [
        (f"arn:aws:iam::{ACCOUNT}:root", "kms:*", (f"arn:aws:iam::{ACCOUNT}:root",)),
        (ACCOUNT, "kms:PutKeyPolicy", (f"arn:aws:iam::{ACCOUNT}:root",)),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", "kms:Put*", (f"arn:aws:iam::{ACCOUNT}:role/Admin",)),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", "*", (f"arn:aws:iam::{ACCOUNT}:role/Admin",)),
        (f"arn:aws:iam::{ACCOUNT}:root", "kms:Decrypt", ()),
    ],
)
def test_k2_administrators_are_principals_allowed_put_key_policy(
    principal: str, action: str, expected: tuple[str, ...]
) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}]}
    assert administrators(policy, ACCOUNT) == expected


def test_k2_deny_statement_grants_nothing() -> None:
    policy = {"Statement": [{"Effect": "Deny", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"}]}
    assert administrators(policy, ACCOUNT) == ()


def test_k2_dropping_an_administrator_is_refused() -> None:
    with pytest.raises(ConfigError, match="drop key administrator"):
        check_lockout(default_key_policy(ACCOUNT), account_id=ACCOUNT, previous=_with_admin())


def test_k2_plan_patch_changes_once_then_nothing() -> None:
    patch = plan_patch(default_key_policy(ACCOUNT), role_arn=ROLE, account_id=ACCOUNT, key_id="k-1")
    assert patch.changed and patch.administrators == (f"arn:aws:iam::{ACCOUNT}:root",)
    again = plan_patch(patch.policy, role_arn=ROLE, account_id=ACCOUNT, key_id="k-1")
    assert not again.changed and again.policy == patch.policy


def test_k2_plan_patch_refuses_a_key_whose_policy_grants_no_administrator() -> None:
    with pytest.raises(ConfigError):
        plan_patch(SEED_LITERAL, role_arn=ROLE, account_id=ACCOUNT, key_id="k-1")


def test_k2_plan_patch_refuses_a_policy_over_32_kb() -> None:
    big = default_key_policy(ACCOUNT)
    big["Statement"].append(
        {
            "Sid": "padding",
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT},
            "Action": "kms:Decrypt",
            "Resource": "x" * 33_000,
        }
    )
    with pytest.raises(ConfigError, match="over KMS's 32768"):
        plan_patch(big, role_arn=ROLE, account_id=ACCOUNT, key_id="k-1")
