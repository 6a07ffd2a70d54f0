"""What each step would do to each of its resources now, read-only, from each domain's own finders and plans:
`mlplane plan`'s rows (`mlplane.accounts.preview`) and `mlplane audit`'s measure of drift (`mlplane.accounts.audit`:
anything but keep in a READY account).

Apart from the plan's verdict (ValidateAccount's checks, `preview`): the audit and the reconcile use these rows
alone, and the checks' code would otherwise be part of AuditFleet's and ReconcileAccount's cold starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplane import modules
from mlplane.changes import PlannedChange
from mlplane.eks import watch
from mlplane.iam import apply as iam_apply
from mlplane.iam import policy as iam_policy
from mlplane.iam.models import PolicyAction, PolicyPlan, UserAction
from mlplane.kms import apply as kms_apply
from mlplane.network import diff as network_diff
from mlplane.network.apply import plan_for
from mlplane.quotas import apply as quotas_apply
from mlplane.quotas.plan import plan as quotas_plan

if TYPE_CHECKING:
    from mlplane.config import Settings
    from mlplane.member import Member
    from mlplane.network.models import NetworkPlan

_ADOPTED = "made by hand, adopted: judged as mlplane's, never removed"  # D3 (mlplane:managed=adopted)
_NOT_OURS = "not mlplane's: used as is, never removed"


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


def _iam(member: Member, settings: Settings) -> list[PlannedChange]:
    decided, observed, _ = iam_apply.decide(member, settings)
    user = {
        UserAction.CREATE: ("create", "tagged as mlplane's"),
        UserAction.ADOPT: ("keep", "mlplane's"),
        UserAction.REUSE: ("keep", _ADOPTED if observed.user and observed.user.adopted else _NOT_OURS),
    }[decided.user_action]
    if decided.tag_user and user[0] == "keep":
        user = ("change", user[1] + "; tag AACResource=aac_iam_user")
    changes = [PlannedChange(domain="iam", type="iam:user", key=decided.user_name, action=user[0], detail=user[1])]
    seed_adopted = observed.policy is not None and observed.policy.adopted
    for planned in decided.policies():
        changes += _policy_changes(decided.user_name, planned, adopted=seed_adopted and not planned.suffix)
    return changes


def _policy_changes(user: str, planned: PolicyPlan, *, adopted: bool = False) -> list[PlannedChange]:
    """One customer-managed policy's rows (the seed's, or one of SaExtraPolicies): the policy, its attachment."""
    shipped = f"{iam_policy.POLICIES_DIR}/{planned.name}.json" if planned.suffix else "the shipped document"
    policy = {
        PolicyAction.CREATE: ("create", f"{planned.size} characters"),
        PolicyAction.UPDATE: ("change", f"a new default version with {shipped}"),
        PolicyAction.KEEP: ("keep", shipped),
    }[planned.action]
    policy_detail = policy[1] + ("; tag AACResource" if planned.tag_policy else "")
    if adopted:
        policy_detail += f"; {_ADOPTED}"
    if planned.prune_versions:
        policy_detail += f"; delete old versions {', '.join(planned.prune_versions)}"
    return [
        PlannedChange(
            domain="iam",
            type="iam:policy",
            key=planned.name,
            action="change" if planned.tag_policy and policy[0] == "keep" else policy[0],
            id=planned.arn if planned.action != PolicyAction.CREATE else None,
            detail=policy_detail,
        ),
        PlannedChange(
            domain="iam",
            type="iam:attachment",
            key=f"{user}/{planned.name}",
            action="create" if planned.attach else "keep",
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
        owner = "mlplane's" if key.owned else _ADOPTED if key.adopted else "not mlplane's: used as is, never deleted"
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
