"""The account's end states that are not rollback: READY; and the list of READY accounts ReconcileFleet walks."""

from __future__ import annotations

from typing import Any

from mlplane import notify
from mlplane.config import Settings
from mlplane.errors import MlplaneError, NotificationFailed
from mlplane.ledger import Ledger, Status
from mlplane.observability import logger
from mlplane.steps import StepOutput

NOT_NOTIFIED = "READY notification not published"


def mark_ready(account_id: str, execution: str, settings: Settings, ledger: Ledger) -> StepOutput:
    """PROVISIONING -> READY, then tell the subscribers, at least once (REQUIREMENTS C10).

    READY is the fact, the message only reports it: a failed publish raises NotificationFailed after READY is
    written, the ASL retries this step on its own long schedule (a retry finds READY and only publishes), and
    when that gives up the execution still ends READY: a notification never rolls back an account under the
    vendor's live data plane (C7). Until it is published the status item says so, where `mlplane status`
    shows it; a later run of the READY account tries again (`deliver_pending_ready`).
    """
    current = ledger.status(account_id)
    done_before = current is not None and current.status == Status.READY and current.execution == execution
    if not done_before:
        ledger.set_status(account_id, Status.READY, execution=execution, only_from=frozenset({Status.PROVISIONING}))
    try:
        published = notify.deliver(
            settings, ledger, notify.message("READY", account_id=account_id, execution=execution)
        )
    except NotificationFailed as err:
        _note(account_id, execution, ledger, f"{NOT_NOTIFIED}: {err.__cause__ or err}")
        raise
    if published and current is not None and (current.error or "").startswith(NOT_NOTIFIED):
        _note(account_id, execution, ledger, None)  # published at last: the note is no longer true
    return StepOutput(existing=1) if done_before else StepOutput(created=1, detail={"notified": True})


def deliver_pending_ready(account_id: str, settings: Settings, ledger: Ledger) -> None:
    """A run that finds the account READY delivers its READY notification if no attempt has yet (C10).

    Best effort: the run has nothing else to do, and a failure here is noted on the status item as before."""
    current = ledger.status(account_id)
    if current is None or current.status != Status.READY:
        return
    try:
        published = notify.deliver(
            settings, ledger, notify.message("READY", account_id=account_id, execution=current.execution)
        )
    except NotificationFailed as err:
        logger.warning("pending READY notification still not published", account_id=account_id, error=str(err))
        return
    if published and (current.error or "").startswith(NOT_NOTIFIED):
        _note(account_id, current.execution, ledger, None)


def _note(account_id: str, execution: str, ledger: Ledger, text: str | None) -> None:
    try:
        ledger.set_status(account_id, Status.READY, execution=execution, error=text)
    except MlplaneError as err:  # the account is READY either way; this note is only for the operator
        logger.error("could not note the READY notification", account_id=account_id, error=str(err))


def notify_ready_for_vendor(account_id: str, execution: str, settings: Settings, ledger: Ledger) -> StepOutput:
    """The account is prepared: the AAC workspace admin can trigger the data plane (seed 000, V1)."""
    notify.deliver(settings, ledger, notify.message("READY_FOR_VENDOR", account_id=account_id, execution=execution))
    return StepOutput(created=1)


def ready_accounts(settings: Settings, ledger: Ledger, *, execution: str) -> dict[str, Any]:
    """ReconcileFleet's list: every READY account, each with the execution name its reconcile records under,
    and the Map's concurrency cap (`reconcile_concurrency`)."""
    accounts = [
        {"account_id": e.status.account_id, "execution": f"{execution}-{e.status.account_id}"}
        for e in ledger.accounts()
        if e.status.status == Status.READY
    ]
    return {"accounts": accounts, "max_concurrency": settings.reconcile_concurrency}
