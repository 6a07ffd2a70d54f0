"""The account's end states that are not rollback: READY."""

from __future__ import annotations

from mlplane import notify
from mlplane.config import Settings
from mlplane.errors import MlplaneError
from mlplane.ledger import Ledger, Status
from mlplane.observability import logger
from mlplane.steps import StepOutput


def mark_ready(account_id: str, execution: str, settings: Settings, ledger: Ledger) -> StepOutput:
    """PROVISIONING -> READY, then tell the subscribers (a redelivered MarkReady is a no-op)."""
    current = ledger.status(account_id)
    if current is not None and current.status == Status.READY and current.execution == execution:
        return StepOutput(existing=1)
    ledger.set_status(account_id, Status.READY, execution=execution, only_from=frozenset({Status.PROVISIONING}))
    try:
        notify.publish(settings, notify.message("READY", account_id=account_id, execution=execution))
    except MlplaneError as err:
        # READY is the fact, the message only reports it: a failed publish must not fail this step, or the
        # workflow would roll a READY account back under the vendor's live data plane (REQUIREMENTS C7). The
        # failure is logged and kept on the status item, where `mlplane status` shows it.
        logger.error("READY notification not published", account_id=account_id, error=str(err))
        _note_unnotified(account_id, execution, ledger, f"{NOT_NOTIFIED}: {err}")
        return StepOutput(created=1, detail={"notified": False, "error": str(err)})
    return StepOutput(created=1, detail={"notified": True})


NOT_NOTIFIED = "READY notification not published"


def _note_unnotified(account_id: str, execution: str, ledger: Ledger, text: str) -> None:
    try:
        ledger.set_status(account_id, Status.READY, execution=execution, error=text)
    except MlplaneError as err:  # the account is READY either way; this note is only for the operator
        logger.error("could not note the unpublished READY notification", account_id=account_id, error=str(err))


def notify_ready_for_vendor(account_id: str, execution: str, settings: Settings) -> StepOutput:
    """The account is prepared: the AAC workspace admin can trigger the data plane (seed 000, V1)."""
    notify.publish(settings, notify.message("READY_FOR_VENDOR", account_id=account_id, execution=execution))
    return StepOutput(created=1)
