"""`mlplane plan`: what a run would do to an account now, computed with read-only calls only.

First the verdict a run would get: IGNORED (an event the EventBridge rules do not match: a Control Tower event
that did not succeed, or an OU not in AllowedOus), REJECTED (ValidateAccount's checks: `validate.admit`, the
same function), NOTHING_TO_DO (READY), RESUME (held), or PROVISION. Then, per resource, what the steps would
find: create, keep, change (with what) or refuse (in the way, not mlplane's), from each domain's own finders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlplane import modules
from mlplane.accounts.events import ControlTowerEvent, parse_start
from mlplane.accounts.validate import admit
from mlplane.changes import PlannedChange
from mlplane.config import Settings
from mlplane.eks import watch
from mlplane.errors import Conflict, InputRejected
from mlplane.iam import apply as iam_apply
from mlplane.iam import plan as iam_plans
from mlplane.iam.models import PolicyAction, UserAction
from mlplane.kms import apply as kms_apply
from mlplane.network import diff as network_diff
from mlplane.network.apply import plan_for
from mlplane.network.models import NetworkPlan
from mlplane.quotas import apply as quotas_apply
from mlplane.quotas.plan import plan as quotas_plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlplane.ledger import Ledger
    from mlplane.member import Member

PLAN_EXECUTION = "mlplane-plan"


def preview(raw: Any, settings: Settings, ledger: Ledger, member_for: Callable[[str], Member]) -> dict[str, Any]:
    """The plan document (`mlplane plan --json`): `verdict`, `reason`, `changes` and the network plan."""
    start = parse_start(raw) if not isinstance(raw, str) else None
    account_id = raw if isinstance(raw, str) else start.account_id  # type: ignore[union-attr]
    document: dict[str, Any] = {"account_id": account_id, "region": settings.member_region, "changes": []}
    ignored = ignored_reason(start, settings)
    if ignored:
        return {**document, "verdict": "IGNORED", "reason": ignored}
    manual = raw if not isinstance(raw, str) else {"account_id": raw}
    try:
        admission = admit(manual, PLAN_EXECUTION, settings, ledger)
    except (InputRejected, Conflict) as err:
        return {**document, "verdict": "REJECTED", "reason": str(err)}
    verdict = {"provision": "PROVISION", "noop": "NOTHING_TO_DO", "resume": "RESUME", "reconcile": "RECONCILE"}[
        admission.action
    ]
    document = {**document, "verdict": verdict, "reason": admission.reason, "ou": admission.ou}
    if admission.action not in ("provision", "reconcile"):
        return document
    member = member_for(account_id)
    network = plan_for(member, settings)
    changes = resource_changes(member, settings, network, enabled=admission.modules)
    return {
        **document,
        "changes": [c.model_dump(mode="json") for c in changes],
        "summary": summarize(changes),
        "network": network.model_dump(mode="json"),
    }


def resource_changes(
    member: Member, settings: Settings, network: NetworkPlan | None = None, *, enabled: tuple[str, ...] = ()
) -> list[PlannedChange]:
    """What each step would do to each of its resources now (read-only): the plan's rows, and `mlplane audit`'s
    measure of drift (anything but keep in a READY account). `enabled`: the optional modules the account gets
    (each module's own plan; none: no call of any module)."""
    return [
        *network_diff.diff(member, network or plan_for(member, settings)),
        *_iam(member, settings),
        *_kms(member, settings),
        *_quotas(member, settings),
        *modules.plan(member, settings, enabled),
    ]


def summarize(changes: list[PlannedChange]) -> dict[str, int]:
    counts = {"create": 0, "change": 0, "keep": 0, "refuse": 0, "wait": 0}
    for change in changes:
        counts[change.action] += 1
    return counts


def ignored_reason(start: Any, settings: Settings) -> str:
    """Why the EventBridge rules (template.yaml, StartProvisioning's events) would not match, or ""."""
    if not isinstance(start, ControlTowerEvent):
        return ""
    status = start.status
    if status.state != "SUCCEEDED":
        return f"Control Tower {start.detail.eventName} is {status.state}: the rules match SUCCEEDED only"
    ou = status.organizationalUnit.organizationalUnitName
    if ou not in settings.allowed_ous:
        return f"OU {ou!r} is not in AllowedOus ({', '.join(settings.allowed_ous)}): the rules do not match it"
    return ""


def _iam(member: Member, settings: Settings) -> list[PlannedChange]:
    arn = iam_apply.policy_arn(member, settings.sa_policy_name)
    observed = iam_apply.observe(member, settings, arn=arn)
    decided = iam_plans.plan(settings, observed, document=iam_plans.shipped_policy(), policy_arn=arn)
    user = {
        UserAction.CREATE: ("create", "tagged as mlplane's"),
        UserAction.ADOPT: ("keep", "mlplane's"),
        UserAction.REUSE: ("keep", "not mlplane's: used as is, never removed"),
    }[decided.user_action]
    if decided.tag_user and user[0] == "keep":
        user = ("change", user[1] + "; tag AACResource=aac_iam_user")
    policy = {
        PolicyAction.CREATE: ("create", f"{decided.policy_size} characters"),
        PolicyAction.UPDATE: ("change", "a new default version with the shipped document"),
        PolicyAction.KEEP: ("keep", "the shipped document"),
    }[decided.policy_action]
    policy_detail = policy[1] + ("; tag AACResource" if decided.tag_policy else "")
    if decided.prune_versions:
        policy_detail += f"; delete old versions {', '.join(decided.prune_versions)}"
    return [
        PlannedChange(domain="iam", type="iam:user", key=decided.user_name, action=user[0], detail=user[1]),
        PlannedChange(
            domain="iam",
            type="iam:policy",
            key=decided.policy_name,
            action="change" if decided.tag_policy and policy[0] == "keep" else policy[0],
            id=arn if decided.policy_action != PolicyAction.CREATE else None,
            detail=policy_detail,
        ),
        PlannedChange(
            domain="iam",
            type="iam:attachment",
            key=f"{decided.user_name}/{decided.policy_name}",
            action="create" if decided.attach else "keep",
            detail="the policy attached to the user",
        ),
    ]


def _kms(member: Member, settings: Settings) -> list[PlannedChange]:
    alias = settings.vault_key_alias
    key = kms_apply.find_key(member, alias)
    if key is None:
        key_change = PlannedChange(domain="kms", type="kms:key", key=alias, action="create", detail="rotation on")
    elif key.state != "Enabled":
        key_change = PlannedChange(
            domain="kms", type="kms:key", key=alias, action="refuse", id=key.key_id, detail=f"key is {key.state}"
        )
    else:
        owner = "mlplane's" if key.owned else "not mlplane's: used as is, never deleted"
        key_change = PlannedChange(domain="kms", type="kms:key", key=alias, action="keep", id=key.key_id, detail=owner)
    role = settings.credential_role_name
    action, detail = "wait", f"statement for {role}, once the vendor has created it"
    if key is not None and key.state == "Enabled":
        if not kms_apply.rotation_enabled(member, key.key_id):
            key_change = key_change.model_copy(
                update={"action": "change", "detail": key_change.detail + "; rotation on"}
            )
        if watch.role_exists(member, role):
            present = kms_apply.statement_present(member, key.key_id, role)
            action, detail = (
                ("keep", f"statement for {role}") if present else ("change", f"add the statement for {role}")
            )
    statement = PlannedChange(
        domain="kms",
        type="kms:key-policy",
        key=alias,
        action=action,
        id=None if key is None else key.key_id,
        detail=detail,
    )
    return [key_change, statement]


def _quotas(member: Member, settings: Settings) -> list[PlannedChange]:
    targets = settings.quota_targets
    decided = quotas_plan(targets, quotas_apply.observe(member, targets))
    changes: list[PlannedChange] = []
    for decision in decided.decisions:
        wanted = f"{decision.applied:g} -> {decision.desired:g}"
        action, detail = {
            "met": ("keep", f"applied {decision.applied:g} >= {decision.desired:g}"),
            "reuse": ("wait", f"{wanted}: request {decision.request_id} already open"),
            "request": ("create", f"{wanted}: an increase request (it cannot be withdrawn)"),
        }[decision.action]
        changes.append(
            PlannedChange(
                domain="quotas",
                type="quotas:request",
                key=decision.key,
                action=action,
                id=decision.request_id,
                detail=detail,
            )
        )
    return changes
