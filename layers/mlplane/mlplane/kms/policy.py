"""Pure key-policy logic for the secure-vault key (REQUIREMENTS K2): merge, lockout check, size check.

The seed (000 step 3) says to delete the default statement and grant a `:user/credential-service-role`; both
are wrong. mlplane keeps every statement, adds or updates only its own Sid granting the *role*, and refuses a
result that would leave nobody able to administer the key (what KMS's lockout safety check protects against).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from mlplane.errors import ConfigError
from mlplane.kms.models import PolicyPatch

MLPLANE_SID = "mlplane-credential-service-role"
ROOT_SID = "Enable IAM User Permissions"
KEY_POLICY_LIMIT = 32_768  # KMS: bytes of a key policy document
ADMIN_ACTION = "kms:PutKeyPolicy"
CREDENTIAL_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")


def root_arn(account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def default_key_policy(account_id: str, partition: str = "aws") -> dict[str, Any]:
    """KMS's default key policy: the account root may do anything, so IAM policies decide who administers."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": ROOT_SID,
                "Effect": "Allow",
                "Principal": {"AWS": root_arn(account_id, partition)},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def credential_statement(role_arn: str, sid: str = MLPLANE_SID) -> dict[str, Any]:
    """K2: the vendor's credential-service-role may use the key (a role principal, not the seed's user)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": role_arn},
        "Action": list(CREDENTIAL_ACTIONS),
        "Resource": "*",
    }


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    raw = policy.get("Statement", [])
    items = [raw] if isinstance(raw, dict) else list(raw)
    return [s for s in items if isinstance(s, dict)]


def merge_statement(policy: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    """The policy with `statement` replacing the one of the same Sid (in place), or appended; others kept."""
    sid = statement.get("Sid")
    merged: list[dict[str, Any]] = []
    replaced = False
    for existing in statements(policy):
        if sid is not None and existing.get("Sid") == sid:
            if not replaced:
                merged.append(statement)
                replaced = True
            continue
        merged.append(existing)
    if not replaced:
        merged.append(statement)
    return {**policy, "Statement": merged}


def remove_statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    """The policy without the statements of Sid `sid`."""
    return {**policy, "Statement": [s for s in statements(policy) if s.get("Sid") != sid]}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _grants(statement: dict[str, Any], action: str) -> bool:
    if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotPrincipal" in statement:
        return False
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in _as_list(statement.get("Action")))


def _aws_principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return _as_list(principal.get("AWS"))
    return []


def administrators(policy: dict[str, Any], account_id: str, partition: str = "aws") -> tuple[str, ...]:
    """AWS principals an Allow statement grants kms:PutKeyPolicy (key administration), account ids as root ARNs.

    Conditions are not evaluated: a conditional grant counts (the check is against removing grants, and
    mlplane never edits a statement it does not own).
    """
    found: set[str] = set()
    for statement in statements(policy):
        if _grants(statement, ADMIN_ACTION):
            for principal in _aws_principals(statement):
                found.add(root_arn(principal, partition) if principal.isdigit() else principal)
    return tuple(sorted(found))


def check_lockout(
    policy: dict[str, Any], *, account_id: str, partition: str = "aws", previous: dict[str, Any] | None = None
) -> tuple[str, ...]:
    """Refuse (ConfigError) a policy that grants nobody key administration, or drops an administrator."""
    admins = administrators(policy, account_id, partition)
    if not admins:
        raise ConfigError(
            f"key policy in {account_id} would grant no principal {ADMIN_ACTION} (the account root or an admin)"
        )
    if previous is not None:
        dropped = sorted(set(administrators(previous, account_id, partition)) - set(admins))
        if dropped:
            raise ConfigError(f"key policy in {account_id} would drop key administrator {dropped[0]}")
    return admins


def policy_text(policy: dict[str, Any]) -> str:
    """The document mlplane sends to KMS: compact JSON, so the size checked is the size sent (KMS counts
    every byte of the document, whitespace included, against its 32 KB)."""
    return json.dumps(policy, separators=(",", ":"))


def policy_size(policy: dict[str, Any]) -> int:
    return len(policy_text(policy).encode("utf-8"))


def check_size(policy: dict[str, Any], *, key_id: str) -> int:
    size = policy_size(policy)
    if size > KEY_POLICY_LIMIT:
        raise ConfigError(f"key policy of {key_id} would be {size} bytes, over KMS's {KEY_POLICY_LIMIT}")
    return size


def plan_patch(
    current: dict[str, Any], *, role_arn: str, account_id: str, key_id: str, partition: str = "aws"
) -> PolicyPatch:
    """K2: merge mlplane's statement into the key's current policy, checked for lockout and size."""
    statement = credential_statement(role_arn)
    merged = merge_statement(current, statement)
    changed = merged != current
    if changed:  # an unchanged policy needs no call, so nothing to refuse
        admins = check_lockout(merged, account_id=account_id, partition=partition, previous=current)
        size = check_size(merged, key_id=key_id)
    else:
        admins, size = administrators(merged, account_id, partition), policy_size(merged)
    return PolicyPatch(
        sid=MLPLANE_SID,
        role_arn=role_arn,
        changed=changed,
        policy=merged,
        size=size,
        administrators=admins,
    )
