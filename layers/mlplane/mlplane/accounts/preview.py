"""`mlplane plan`: what a run would do to an account now, computed with read-only calls only.

First the verdict a run would get: IGNORED (an event the EventBridge rules do not match: a Control Tower event
that did not succeed, or an OU not in AllowedOus), REJECTED (ValidateAccount's checks: `validate.admit`, the
same function), NOTHING_TO_DO (READY), RESUME (held), or PROVISION. Then, per resource, what the steps would
find: create, keep, change (with what) or refuse (in the way, not mlplane's), from each domain's own finders
(`mlplane.accounts.planned`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlplane.accounts.events import ControlTowerEvent, parse_start
from mlplane.accounts.planned import resource_changes
from mlplane.accounts.validate import admit
from mlplane.changes import PlannedChange
from mlplane.config import Settings
from mlplane.errors import Conflict, InputRejected
from mlplane.network import blueprint
from mlplane.network.apply import plan_for

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
    document = {
        **document,
        "verdict": verdict,
        "reason": admission.reason,
        "ou": admission.ou,
        "network_blueprint": blueprint.describe(settings, admission.network_blueprint),
    }
    if admission.action not in ("provision", "reconcile"):
        return document
    settings = settings.network_for(admission.network_blueprint)
    member = member_for(account_id)
    network = plan_for(member, settings)
    changes = resource_changes(member, settings, network, enabled=admission.modules)
    return {
        **document,
        "changes": [c.model_dump(mode="json") for c in changes],
        "summary": summarize(changes),
        "network": network.model_dump(mode="json"),
    }


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
