"""`mlplane reconcile` (REQUIREMENTS D2): converge a READY account to the plan, never roll it back.

The steps are idempotent (C6) and their finders verify what the ledger says, so running them again on a READY
account re-creates what is missing (a route, the policy attachment), sets what drifted (DNS attributes, a new
default policy version with the shipped document, rotation, mlplane's statement in the key policy once the
vendor's role exists) and requests new quota targets; subnet tags are put back. Each domain runs on its own: a
failure in one is recorded and the rest goes on. The account stays READY whatever happens (the vendor is
there, C7); what could not be fixed is what the audit still finds afterwards, notified (RECONCILED).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlplane import modules, notify
from mlplane.accounts.audit import audit, judged
from mlplane.eks import watch
from mlplane.errors import MlplaneError
from mlplane.iam import apply as iam_apply
from mlplane.kms import apply as kms_apply
from mlplane.network import apply as network_apply
from mlplane.network import blueprint
from mlplane.observability import logger
from mlplane.quotas import apply as quotas_apply

if TYPE_CHECKING:
    from mlplane.config import Settings
    from mlplane.member import Member


def _key(finding: dict[str, Any]) -> tuple[str, str]:
    return str(finding["type"]), str(finding["key"])


def reconcile(member: Member, settings: Settings) -> dict[str, Any]:
    """Fix what the audit finds, domain by domain; returns and notifies what was fixed and what was not."""
    settings = blueprint.settings_for(settings, member.ledger, member.account_id)  # as built (N6)
    before = judged(audit(member, settings))
    failed: list[dict[str, str]] = []
    steps: list[tuple[str, Callable[[], object]]] = [
        ("network", lambda: network_apply.run(member, settings)),
        ("network tags", lambda: network_apply.restore_subnet_tags(member, settings)),
        ("iam", lambda: iam_apply.run(member, settings)),
        ("kms key", lambda: kms_apply.ensure_key(member, settings)),
        ("quotas", lambda: quotas_apply.run(member, settings)),
    ]
    for name in member.ledger.modules(member.account_id):  # as ValidateAccount resolved them for this run
        steps.append((f"module {name}", lambda name=name: modules.apply(member, settings, (name,))))  # type: ignore[misc]
    if watch.role_exists(member, settings.credential_role_name):
        steps.append(("kms policy", lambda: kms_apply.patch_policy(member, settings)))
    for name, step in steps:
        try:
            step()
        except MlplaneError as err:  # recorded; never a rollback of a READY account
            logger.warning("reconcile step failed", step=name, error=str(err))
            failed.append({"step": name, "error": str(err)})
    after = judged(audit(member, settings))
    left = {_key(f) for f in after}
    fixed = [f for f in before if _key(f) not in left]
    document = notify.message(
        "RECONCILED", account_id=member.account_id, execution=member.execution, error=_summary(failed)
    )
    document |= {"fixed": fixed, "unfixed": after, "failed_steps": failed}
    notify.deliver(settings, member.ledger, document)
    return {"account_id": member.account_id, "fixed": fixed, "unfixed": after, "failed_steps": failed}


def _summary(failed: list[dict[str, str]]) -> str | None:
    return "; ".join(f"{f['step']}: {f['error']}" for f in failed) or None
