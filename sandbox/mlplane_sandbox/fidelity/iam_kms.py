"""IAM, KMS and STS checks real AWS makes and moto 5.2.5 skips.

KMS (PutKeyPolicy, and CreateKey with a Policy):
- a key policy document over 32,768 bytes -> `LimitExceededException` (KMS quotas: "Key policy document
  size: 32 KB"; PutKeyPolicy: "If the key policy exceeds the length constraint, KMS returns a
  LimitExceededException"); whitespace counts, it is part of the document;
- every AWS principal ARN of a role or user must exist (in whatever account of the moto world it names), else
  `MalformedPolicyDocumentException` "Policy contains a statement with one or more invalid principals.";
- IAM eventual consistency: a role created less than `role_propagation_seconds` virtual seconds ago (default
  60, `mlplane local run --kms-propagation`) is not yet a valid principal (same error; PutKeyPolicy: a new
  principal "might not be immediately visible to KMS"). Creation times come from the `iam:CreateRole`
  after-rule, or from `note_role_created` for roles made straight in moto's backend (the vendor simulator);
- the lockout safety check, simplified: unless `BypassPolicyLockoutSafetyCheck` is true, some Allow statement
  must grant `kms:PutKeyPolicy` (an action pattern matching it: `kms:*`, `*`, ...) to the key account's root
  (ARN or bare account id), to `*`, or to the caller (its role's ARN for an assumed-role session). Real KMS
  evaluates the caller's IAM policies as well; granting the root delegates to them, so the sandbox accepts the
  root grant, as KMS does for a caller whose IAM policy allows PutKeyPolicy. Conditions are not evaluated.
KMS key states (developer guide, "Key states of AWS KMS keys"; moto changes any key in any state):
- on a key `PendingDeletion`, EnableKeyRotation, DisableKeyRotation, ScheduleKeyDeletion (so never twice),
  EnableKey, DisableKey, CreateAlias, TagResource, UntagResource and UpdateKeyDescription ->
  `KMSInvalidStateException` "<key ARN> is pending deletion."; PutKeyPolicy, GetKeyPolicy, DescribeKey,
  DeleteAlias and CancelKeyDeletion still succeed there (the table's check marks);
- ScheduleKeyDeletion's PendingWindowInDays outside 7-30 -> `ValidationException` (moto silently ignores
  the call and leaves the key Enabled).
IAM:
- DeletePolicy of a policy still attached to a user, role or group -> `DeleteConflict` (409); of a policy
  with versions besides the default one -> `DeleteConflict` (DeletePolicy: "you must delete all the
  policy's versions" first; the default one goes with the policy);
- DeleteUser of a user that still has a login profile, access keys, signing certificates, SSH public keys,
  MFA devices or group memberships -> `DeleteConflict` (409; DeleteUser: "you must delete the items attached
  to the user manually, or the deletion fails"); moto checks only its policies;
- CreatePolicy / CreatePolicyVersion with a document over 6,144 characters without whitespace ->
  `LimitExceeded` (409).
STS (when `configure(assume_role_check=True)`; off by default for fixtures that rely on moto's leniency):
- AssumeRole of a role that does not exist -> `AccessDenied` (403); moto lets anyone assume any role;
- AssumeRole of a role whose trust policy does not allow the caller -> `AccessDenied` (403): an Allow statement
  for sts:AssumeRole whose AWS principal is the caller's account (root ARN or id), its role, or `*`, and whose
  conditions, if any, hold; the conditions played are ArnLike/ArnEquals/StringEquals/StringLike on
  `aws:PrincipalArn` (the caller's role ARN for an assumed-role session); any other condition is not met
  (IAM User Guide, "IAM JSON policy elements: Principal" and "AWS global condition context keys").
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends

from mlplane_sandbox.clock import VirtualClock, clock
from mlplane_sandbox.options import DEFAULT_ROLE_PROPAGATION_SECONDS
from mlplane_sandbox.rules import AwsError, Call, after, before

INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
POLICY_SIZE_LIMIT = 6_144
KEY_POLICY_SIZE_LIMIT = 32_768  # bytes (KMS quotas: key policy document size)
DELETION_WINDOW_DAYS = range(7, 31)  # ScheduleKeyDeletion: PendingWindowInDays "must be between 7 and 30"
POLICY_VERSIONS_CONFLICT = (
    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions."
    " The default version is deleted with the policy."
)
_PARTITION = "aws"
_ROLE_OR_USER = re.compile(r"^arn:[\w-]+:iam::(\d{12}):(role|user)/(?:[^/]+/)*([^/]+)$")
_ASSUMED_ROLE = re.compile(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")
_WHITESPACE = re.compile(r"\s")


@dataclass
class _Config:
    role_propagation_seconds: float = DEFAULT_ROLE_PROPAGATION_SECONDS
    # Off by default: fixtures that assume a member role moto never created (as moto allows) keep working.
    # The sandbox's world places accounts with their execution role and turns it on.
    assume_role_check: bool = False


_config = _Config()
_lock = threading.Lock()
_role_created: dict[tuple[str, str], tuple[VirtualClock, float]] = {}


def configure(*, role_propagation_seconds: float | None = None, assume_role_check: bool | None = None) -> None:
    """Tune the rules: how long a new role takes to become a valid principal; whether AssumeRole is checked."""
    with _lock:
        if role_propagation_seconds is not None:
            _config.role_propagation_seconds = role_propagation_seconds
        if assume_role_check is not None:
            _config.assume_role_check = assume_role_check


def reset() -> None:
    """Defaults, and no remembered role creations (between sandbox runs)."""
    global _config  # noqa: PLW0603 - one configuration per sandbox run
    with _lock:
        _config = _Config()
        _role_created.clear()


def note_role_created(account_id: str, role_name: str, at: float | None = None) -> None:
    """Remember that a role was created at virtual time `at` (default now): callers that create roles in
    moto's backend. The vendor simulator passes the time its phase was due, which the clock may only reach
    at its next advance: KMS's delay counts from when IAM made the role, not from when the sandbox noticed."""
    now = clock()
    with _lock:
        _role_created[(account_id, role_name)] = (now, now.now() if at is None else at)


def _iam(account_id: str) -> Any:
    return iam_backends[account_id][_PARTITION]


def _role(account_id: str, name: str) -> Any:
    return next((role for role in _iam(account_id).roles.values() if role.name == name), None)


def principal_exists(arn: str) -> bool:
    match = _ROLE_OR_USER.match(arn)
    if match is None:
        return True  # root, account ids, assumed-role sessions, services: not checked
    account, kind, name = match.groups()
    if kind == "role":
        role = _role(account, name)
        return role is not None and role.arn == arn
    user = _iam(account).users.get(name)
    return user is not None and user.arn == arn


def _propagated(arn: str) -> bool:
    match = _ROLE_OR_USER.match(arn)
    if match is None or match.group(2) != "role":
        return True
    with _lock:
        seen = _role_created.get((match.group(1), match.group(3)))
        wait = _config.role_propagation_seconds
    if seen is None or seen[0] is not clock():
        return True  # created before this clock (an earlier run) or by a path no rule saw
    return clock().now() - seen[1] >= wait


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, dict)) else list(value)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]


def _aws_principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal", statement.get("NotPrincipal"))
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS"))]
    return []


def _parse_policy(text: Any) -> dict[str, Any]:
    try:
        policy = json.loads(str(text))
    except json.JSONDecodeError:
        raise AwsError("MalformedPolicyDocumentException", "Policy is not valid JSON.") from None
    if not isinstance(policy, dict):
        raise AwsError("MalformedPolicyDocumentException", "Policy is not valid JSON.")
    return policy


def _caller_arns(call: Call) -> set[str]:
    arns = {call.principal}
    match = _ASSUMED_ROLE.match(call.principal)
    if match:
        partition, account, role = match.groups()
        arns.add(f"arn:{partition}:iam::{account}:role/{role}")
    return arns


def _key_account(call: Call) -> str:
    key_id = str(call.params.get("KeyId", ""))
    if key_id.startswith("arn:"):
        return key_id.split(":")[4]
    return call.account_id


def _allows_policy_update(policy: dict[str, Any], call: Call) -> bool:
    account = _key_account(call)
    allowed = {"*", account, f"arn:{_PARTITION}:iam::{account}:root"} | _caller_arns(call)
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotPrincipal" in statement:
            continue
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        if not any(fnmatchcase("kms:putkeypolicy", pattern.lower()) for pattern in actions):
            continue
        if allowed.intersection(_aws_principals(statement)):
            return True
    return False


def _check_key_policy(call: Call) -> None:
    text = str(call.params["Policy"])
    size = len(text.encode("utf-8"))
    if size > KEY_POLICY_SIZE_LIMIT:
        raise AwsError(
            "LimitExceededException",
            f"Policy document of {size} bytes exceeds the maximum key policy size of {KEY_POLICY_SIZE_LIMIT} bytes.",
        )
    policy = _parse_policy(text)
    for statement in _statements(policy):
        for principal in _aws_principals(statement):
            if not principal_exists(principal) or not _propagated(principal):
                raise AwsError("MalformedPolicyDocumentException", INVALID_PRINCIPALS)
    if not call.params.get("BypassPolicyLockoutSafetyCheck") and not _allows_policy_update(policy, call):
        raise AwsError("MalformedPolicyDocumentException", LOCKOUT)


@before("kms", "PutKeyPolicy")
def put_key_policy(call: Call) -> None:
    _check_key_policy(call)


@before("kms", "CreateKey")
def create_key(call: Call) -> None:
    if "Policy" in call.params:
        _check_key_policy(call)


@after("iam", "CreateRole")
def role_created(call: Call, parsed: dict[str, Any]) -> None:
    del parsed
    note_role_created(call.account_id, str(call.params.get("RoleName", "")))


# -- KMS key states -------------------------------------------------------------------------------------
# Operations the key-state table marks "KMSInvalidStateException: <key ARN> is pending deletion." (footnote
# [3]), with the parameter that names the key.
_REFUSED_WHILE_PENDING_DELETION = {
    "EnableKeyRotation": "KeyId",
    "DisableKeyRotation": "KeyId",
    "ScheduleKeyDeletion": "KeyId",
    "EnableKey": "KeyId",
    "DisableKey": "KeyId",
    "CreateAlias": "TargetKeyId",
    "TagResource": "KeyId",
    "UntagResource": "KeyId",
    "UpdateKeyDescription": "KeyId",
}


def kms_key(call: Call, key_ref: str) -> Any:
    """moto's key that `key_ref` (id, ARN, alias name or alias ARN) names, or None (moto answers NotFound)."""
    account, region = call.account_id, call.region
    if key_ref.startswith("arn:"):
        parts = key_ref.split(":")
        region, account = parts[3], parts[4]
    backend = kms_backends[account][region]
    key_id = key_ref.rsplit(":key/", maxsplit=1)[-1]
    alias = "alias/" + key_ref.rsplit(":alias/", maxsplit=1)[-1] if ":alias/" in key_ref else key_ref
    # Read-only lookup: moto's own any_id_to_key_id creates AWS managed keys for reserved alias names.
    return next((k for k in backend.keys.values() if k.id == key_id or alias in k.aliases), None)


def _refuse_pending_deletion(call: Call) -> None:
    key = kms_key(call, str(call.params.get(_REFUSED_WHILE_PENDING_DELETION[call.operation], "")))
    if key is not None and key.key_state == "PendingDeletion":
        raise AwsError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


# Input validation comes before the key-state check.
@before("kms", "ScheduleKeyDeletion")
def schedule_key_deletion_window(call: Call) -> None:
    days = call.params.get("PendingWindowInDays")
    if days is not None and int(days) not in DELETION_WINDOW_DAYS:
        raise AwsError("ValidationException", "PendingWindowInDays must be between 7 and 30")


for _operation in _REFUSED_WHILE_PENDING_DELETION:
    before("kms", _operation)(_refuse_pending_deletion)


# -- IAM deletes ------------------------------------------------------------------------------------------
@before("iam", "DeletePolicy")
def delete_policy(call: Call) -> None:
    arn = str(call.params.get("PolicyArn", ""))
    policy = _iam(call.account_id).managed_policies.get(arn)
    if policy is not None and int(getattr(policy, "attachment_count", 0)) > 0:
        raise AwsError("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    if policy is not None and len(policy.versions) > 1:
        raise AwsError("DeleteConflict", POLICY_VERSIONS_CONFLICT, 409)


@before("iam", "DeleteUser")
def delete_user(call: Call) -> None:
    iam = _iam(call.account_id)
    user = iam.users.get(str(call.params.get("UserName", "")))
    if user is None:
        return  # moto answers NoSuchEntity
    in_group = any(user in group.users for group in iam.groups.values())
    # What IAM names in its DeleteConflict message for each kind of item still attached to the user.
    for attached, message in (
        (user.password, "must delete login profile first"),
        (user.access_keys, "must delete access keys first"),
        (user.signing_certificates, "must delete certificates first"),
        (user.ssh_public_keys, "must remove referenced objects first"),
        (user.mfa_devices, "must delete MFA device first"),
        (in_group, "must remove users from group first"),
    ):
        if attached:
            raise AwsError("DeleteConflict", f"Cannot delete entity, {message}.", 409)


@before("iam", "CreatePolicy")
@before("iam", "CreatePolicyVersion")
def policy_size(call: Call) -> None:
    size = len(_WHITESPACE.sub("", str(call.params.get("PolicyDocument", ""))))
    if size > POLICY_SIZE_LIMIT:
        raise AwsError("LimitExceeded", f"Cannot exceed quota for PolicySize: {POLICY_SIZE_LIMIT}", 409)


@before("sts", "AssumeRole")
def assume_role(call: Call) -> None:
    with _lock:
        enabled = _config.assume_role_check
    arn = str(call.params.get("RoleArn", ""))
    match = _ROLE_OR_USER.match(arn)
    exists = match is not None and match.group(2) == "role" and principal_exists(arn)
    trusted = exists and match is not None and _trusts(_role(match.group(1), match.group(3)), call.principal)
    if enabled and not trusted:
        raise AwsError(
            "AccessDenied",
            f"User: {call.principal} is not authorized to perform: sts:AssumeRole on resource: {arn}",
            403,
        )


_ASSUMED_ROLE = re.compile(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")
_PRINCIPAL_ARN_CONDITIONS = {"ArnLike", "ArnEquals", "StringEquals", "StringLike"}


def _principal_arn(caller: str) -> str:
    """aws:PrincipalArn: for an assumed-role session, the role's ARN."""
    match = _ASSUMED_ROLE.match(caller)
    return f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}" if match else caller


def _trusts(role: Any, caller: str) -> bool:
    """The role's trust policy lets `caller` assume it (see the module docstring for what is played)."""
    document = role.assume_role_policy_document
    policy = json.loads(document) if isinstance(document, str) else document
    principal_arn = _principal_arn(caller)
    account = principal_arn.split(":")[4] if principal_arn.startswith("arn:") else ""
    accepted = {"*", account, f"arn:{_PARTITION}:iam::{account}:root", principal_arn}
    for statement in _as_list(policy.get("Statement", [])):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(fnmatchcase("sts:AssumeRole", a) for a in actions):
            continue
        principal = statement.get("Principal", {})
        named = {"*"} if principal == "*" else set(_as_list(principal.get("AWS", [])))
        if named & accepted and _conditions_hold(statement.get("Condition", {}), principal_arn):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], principal_arn: str) -> bool:
    for operator, keys in conditions.items():
        if operator not in _PRINCIPAL_ARN_CONDITIONS or set(keys) != {"aws:PrincipalArn"}:
            return False
        patterns = _as_list(keys["aws:PrincipalArn"])
        like = operator.endswith("Like")
        if not any(fnmatchcase(principal_arn, p) if like else principal_arn == p for p in patterns):
            return False
    return True
