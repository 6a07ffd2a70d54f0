"""Pure planning of the service account and its policy (REQUIREMENTS I1, I2): no AWS calls, no clock."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from mlplane.config import Settings
from mlplane.errors import ConfigError
from mlplane.iam.models import IamObserved, IamPlan, PolicyAction, PolicyVersion, UserAction

POLICY_FILE = "aac_ml_sa_policy.json"
POLICY_NAME_PREFIX = "AAC_MachineLearning"
POLICY_SIZE_LIMIT = 6_144  # IAM: characters of a managed policy document, whitespace not counted
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy
AAC_RESOURCE_TAG = "AACResource"
AAC_RESOURCE_VALUE = "aac_sa_custom_policy"  # seed 000 step 1b
AAC_USER_TAG_VALUE = "aac_iam_user"  # the service account's, from the vendor's prerequisite page (REQUIREMENTS I4)

_WHITESPACE = re.compile(r"\s")


def shipped_policy() -> dict[str, Any]:
    """The exact policy document of seed 000 step 1a, as shipped beside this module."""
    text = resources.files("mlplane.iam").joinpath(POLICY_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def policy_size(document: dict[str, Any]) -> int:
    """The document's size as IAM counts it against the managed-policy limit: whitespace is not counted."""
    return len(_WHITESPACE.sub("", json.dumps(document, separators=(",", ":"))))


def check_policy(name: str, document: dict[str, Any]) -> int:
    """Refuse (ConfigError, before any call) a name without the vendor's prefix or an oversized document."""
    if not name.startswith(POLICY_NAME_PREFIX):
        raise ConfigError(f"policy name {name!r} must start with {POLICY_NAME_PREFIX!r}")
    size = policy_size(document)
    if size > POLICY_SIZE_LIMIT:
        raise ConfigError(f"policy {name} is {size} characters without whitespace, over IAM's {POLICY_SIZE_LIMIT}")
    return size


def versions_to_prune(versions: tuple[PolicyVersion, ...]) -> tuple[str, ...]:
    """The oldest non-default versions to delete so that one more version fits in IAM's five."""
    excess = len(versions) + 1 - MAX_POLICY_VERSIONS
    if excess <= 0:
        return ()
    candidates = sorted((v for v in versions if not v.is_default), key=lambda v: version_number(v.version_id))
    return tuple(v.version_id for v in candidates[:excess])


def plan(settings: Settings, observed: IamObserved, *, document: dict[str, Any], policy_arn: str) -> IamPlan:
    """What CreateIam must do to reach I1/I2 from the observed state."""
    size = check_policy(settings.sa_policy_name, document)
    user = observed.user
    if user is None:
        user_action = UserAction.CREATE
    elif user.owned:
        user_action = UserAction.ADOPT
    else:
        user_action = UserAction.REUSE
    policy = observed.policy
    prune: tuple[str, ...] = ()
    if policy is None:
        policy_action = PolicyAction.CREATE
    elif policy.default_document == document:
        policy_action = PolicyAction.KEEP
    else:
        policy_action = PolicyAction.UPDATE
        prune = versions_to_prune(policy.versions)
    attached = user is not None and policy_arn in user.attached_policy_arns
    return IamPlan(
        user_name=settings.sa_user_name,
        user_action=user_action,
        user_is_mlplanes=user_action != UserAction.REUSE,
        policy_name=settings.sa_policy_name,
        policy_arn=policy_arn,
        policy_action=policy_action,
        policy_is_mlplanes=policy is None or policy.owned,
        policy_size=size,
        prune_versions=prune,
        tag_policy=policy is not None and policy.tags.get(AAC_RESOURCE_TAG) != AAC_RESOURCE_VALUE,
        tag_user=user is not None and user.tags.get(AAC_RESOURCE_TAG) != AAC_USER_TAG_VALUE,
        attach=not attached,
    )


def version_number(version_id: str) -> int:
    """2 for 'v2': IAM numbers a policy's versions in creation order."""
    digits = version_id.lstrip("vV")
    return int(digits) if digits.isdigit() else 0
