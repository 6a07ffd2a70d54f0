"""The walks of an account's whole ledger, with the table of every domain's undo handlers
(`mlplane.rollback.registry`), each ending in a final status, notified: the provision workflow's Rollback (held
instead while the vendor has anything in the account, C7) and the deprovision workflow's MarkDeprovisioned.

Apart from the walker (`mlplane.rollback.run`), which the steps that tear down one domain use with that domain's
handlers alone: the whole table would otherwise be part of each of their cold starts.
"""

from __future__ import annotations

from typing import Literal

from mlplane import notify
from mlplane.config import Settings
from mlplane.errors import RollbackIncomplete, TransientError
from mlplane.ledger import AccountStatus, Ledger, Status
from mlplane.member import Member
from mlplane.network import CIDR_ALLOCATION
from mlplane.network.undo import release_in_closed_account
from mlplane.observability import logger
from mlplane.rollback.hold import hold_for_vendor
from mlplane.rollback.registry import handlers_for
from mlplane.rollback.run import UndoReport, deferred_items, describe, undo_all
from mlplane.steps import RollbackOutput, StepOutput, UndoneItem


def rollback(
    member: Member, settings: Settings, error: str | None, *, attempt: int = 0, waited_seconds: int = 0
) -> RollbackOutput:
    """Undo everything mlplane recorded for the account; ROLLED_BACK or ROLLBACK_INCOMPLETE, notified.

    `attempt`/`waited_seconds`: the workflow's Rollback loop (polls, not wall-clock time). While an outage left
    something and the retry budget (`rollback_retry_seconds`) lasts, the output asks for another walk after
    `retry_in_seconds` (status stays ROLLING_BACK); then the outcome is final, whatever is left named.

    Unless the vendor already has something in the account: then nothing is removed (ROLLBACK_HELD, C7). Each
    walk looks again, since the vendor may have started while an outage kept the rollback waiting.
    """
    held = hold_for_vendor(member, settings, error)
    if held is not None:
        return held
    ledger = member.ledger
    if attempt == 0:
        ledger.set_status(member.account_id, Status.ROLLING_BACK, execution=member.execution, error=error)
    report = _undo_ledger(member)
    deferred = deferred_items(ledger, member.account_id)
    if report.unfinished and waited_seconds < settings.rollback_retry_seconds:
        delay = settings.retry_delay(attempt)
        logger.info("rollback unfinished: walking again", attempt=attempt, retry_in=delay, left=len(report.left))
        return RollbackOutput(
            outcome="ROLLING_BACK",
            removed=report.removed,
            blocked=report.left,
            deferred=deferred,
            error=error,
            retry=True,
            attempt=attempt + 1,
            waited_seconds=waited_seconds + delay,
            retry_in_seconds=delay,
        )
    left = report.left
    outcome: Literal["ROLLED_BACK", "ROLLBACK_INCOMPLETE"] = "ROLLBACK_INCOMPLETE" if left else "ROLLED_BACK"
    summary = f"{error or 'rollback'}; rollback left: {describe(left)}" if left else error
    ledger.set_status(member.account_id, Status(outcome), execution=member.execution, error=summary)
    logger.info("rollback finished", outcome=outcome, removed=report.removed, left=len(left))
    notify.deliver(
        settings,
        ledger,
        notify.message(
            outcome,
            account_id=member.account_id,
            execution=member.execution,
            error=summary,
            deferred=[d.model_dump() for d in deferred],
            blocked=[b.model_dump() for b in left],
        ),
    )
    return RollbackOutput(
        outcome=outcome,
        removed=report.removed,
        blocked=left,
        deferred=deferred,
        error=summary,
        attempt=attempt,
        waited_seconds=waited_seconds,
    )


def mark_deprovisioned(member: Member, settings: Settings) -> StepOutput:
    """Undo what is left (quota requests are reported, not undone), DEPROVISIONED, notify.

    The CIDR slot is freed by the walk (the allocation's undo, once the VPC is verified gone), nowhere else.
    """
    ledger = member.ledger
    if _deprovisioned_before(ledger.status(member.account_id), member.execution):
        return StepOutput(existing=1)
    report = _undo_ledger(member)
    if report.unfinished:
        raise TransientError(f"deprovision of {member.account_id} unfinished: {_names(report.left)}")
    if report.blocked:
        raise RollbackIncomplete(f"deprovision of {member.account_id} blocked by: {_names(report.blocked)}")
    deferred = [d.model_dump() for d in deferred_items(ledger, member.account_id)]
    ledger.set_status(member.account_id, Status.DEPROVISIONED, execution=member.execution)
    notify.deliver(
        settings,
        ledger,
        notify.message("DEPROVISIONED", account_id=member.account_id, execution=member.execution, deferred=deferred),
    )
    return StepOutput(removed=report.removed, detail={"deferred": deferred})


def _undo_ledger(member: Member) -> UndoReport:
    """The walk of every record the account's ledger lists, with the handlers of their types."""
    records = member.ledger.resources(member.account_id)
    return undo_all(member, records, handlers_for(r.type for r in records))


def _deprovisioned_before(current: AccountStatus | None, execution: str) -> bool:
    """DEPROVISIONED by an earlier execution: nothing to do. By this one, the step goes through again, which
    finds nothing left to undo and publishes the notification if a failed publish kept it owed (C10)."""
    return current is not None and current.status == Status.DEPROVISIONED and current.execution != execution


def _names(items: list[UndoneItem]) -> str:
    return ", ".join(f"{i.type} {i.id}" for i in items)


CLOSED_REASON = "in a closed account: its role can no longer be assumed; AWS deletes what is left 90 days after closure"


def mark_closed_deprovisioned(account_id: str, execution: str, ledger: Ledger, settings: Settings) -> StepOutput:
    """Deprovision of a closed account: what it still can, from the hub alone.

    Each resource the ledger still lists is kept as deferred with why (nothing in the account can be reached);
    the CIDR slot is released only if no VPC or transit gateway attachment holding it is still recorded, since
    nothing can verify that they are gone; the account is DEPROVISIONED and the notification names the rest.
    """
    if _deprovisioned_before(ledger.status(account_id), execution):
        return StepOutput(existing=1)
    live = ledger.resources(account_id)
    for record in live:
        ledger.record_deferred(account_id, key=record.key, reason=CLOSED_REASON)
    freed, kept = release_in_closed_account(ledger, account_id)
    held = [] if kept is None else [UndoneItem(type=CIDR_ALLOCATION, id=account_id, reason=kept)]
    deferred = [
        UndoneItem(type=r.type, id=r.resource_id or r.key, reason=str(r.data.get("deferred", ""))).model_dump()
        for r in ledger.deferred(account_id)
    ]
    ledger.set_status(account_id, Status.DEPROVISIONED, execution=execution, error="account closed in Organizations")
    notify.deliver(
        settings,
        ledger,
        notify.message(
            "DEPROVISIONED",
            account_id=account_id,
            execution=execution,
            deferred=deferred,
            blocked=[h.model_dump() for h in held],
        ),
    )
    return StepOutput(removed=freed, detail={"deferred": deferred, "held": [h.model_dump() for h in held]})
