"""Pure planning of the service account and its policy (REQUIREMENTS I1, I2): no AWS calls, no clock."""

from __future__ import annotations

from typing import Any

from mlplane.config import Settings
from mlplane.iam.models import IamObserved, IamPlan, ObservedPolicy, PolicyAction, PolicyPlan, PolicyVersion, UserAction
from mlplane.iam.policy import check_policy, policy_size

MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy
AAC_RESOURCE_TAG = "AACResource"
AAC_RESOURCE_VALUE = "aac_sa_custom_policy"  # seed 000 step 1b
AAC_USER_TAG_VALUE = "aac_iam_user"  # the service account's, from the vendor's prerequisite page (REQUIREMENTS I4)


def plan_policy(
    name: str,
    arn: str,
    document: dict[str, Any],
    observed: ObservedPolicy | None,
    attached: tuple[str, ...] | None,
    *,
    suffix: str = "",
) -> PolicyPlan:
    """What CreateIam must do to one customer-managed policy (`attached`: the user's policies, None: no user)."""
    prune: tuple[str, ...] = ()
    if observed is None:
        action = PolicyAction.CREATE
    elif observed.default_document == document:
        action = PolicyAction.KEEP
    else:
        action = PolicyAction.UPDATE
        prune = versions_to_prune(observed.versions)
    return PolicyPlan(
        name=name,
        arn=arn,
        action=action,
        is_mlplanes=observed is None or observed.owned,
        size=policy_size(document),
        prune_versions=prune,
        tag_policy=observed is not None and observed.tags.get(AAC_RESOURCE_TAG) != AAC_RESOURCE_VALUE,
        attach=attached is None or arn not in attached,
        suffix=suffix,
    )


def versions_to_prune(versions: tuple[PolicyVersion, ...]) -> tuple[str, ...]:
    """The oldest non-default versions to delete so that one more version fits in IAM's five."""
    excess = len(versions) + 1 - MAX_POLICY_VERSIONS
    if excess <= 0:
        return ()
    candidates = sorted((v for v in versions if not v.is_default), key=lambda v: version_number(v.version_id))
    return tuple(v.version_id for v in candidates[:excess])


def plan(
    settings: Settings,
    observed: IamObserved,
    *,
    document: dict[str, Any],
    policy_arn: str,
    extra: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> IamPlan:
    """What CreateIam must do to reach I1/I2 from the observed state (`extra`: name -> (arn, document) of the
    further customer policies, `extra_policies`)."""
    check_policy(settings.sa_policy_name, document)
    user = observed.user
    if user is None:
        user_action = UserAction.CREATE
    elif user.owned:
        user_action = UserAction.ADOPT
    else:
        user_action = UserAction.REUSE
    attached = user.attached_policy_arns if user is not None else None
    seed = plan_policy(settings.sa_policy_name, policy_arn, document, observed.policy, attached)
    further = tuple(
        plan_policy(name, arn, doc, observed.extra_policies.get(name), attached, suffix=f"/{name}")
        for name, (arn, doc) in (extra or {}).items()
    )
    return IamPlan(
        user_name=settings.sa_user_name,
        user_action=user_action,
        user_is_mlplanes=user_action != UserAction.REUSE,
        policy_name=seed.name,
        policy_arn=seed.arn,
        policy_action=seed.action,
        policy_is_mlplanes=seed.is_mlplanes,
        policy_size=seed.size,
        prune_versions=seed.prune_versions,
        tag_policy=seed.tag_policy,
        tag_user=user is not None and user.tags.get(AAC_RESOURCE_TAG) != AAC_USER_TAG_VALUE,
        attach=seed.attach,
        extra_policies=further,
    )


def version_number(version_id: str) -> int:
    """2 for 'v2': IAM numbers a policy's versions in creation order."""
    digits = version_id.lstrip("vV")
    return int(digits) if digits.isdigit() else 0
