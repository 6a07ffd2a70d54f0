"""The account's end states that are not rollback: READY."""

from __future__ import annotations

from mlplane import notify
from mlplane.config import Settings
from mlplane.ledger import Ledger, Status
from mlplane.steps import StepOutput


def mark_ready(account_id: str, execution: str, settings: Settings, ledger: Ledger) -> StepOutput:
    """PROVISIONING -> READY, then tell the subscribers (a redelivered MarkReady is a no-op)."""
    current = ledger.status(account_id)
    if current is not None and current.status == Status.READY and current.execution == execution:
        return StepOutput(existing=1)
    ledger.set_status(account_id, Status.READY, execution=execution, only_from=frozenset({Status.PROVISIONING}))
    notify.publish(settings, notify.message("READY", account_id=account_id, execution=execution))
    return StepOutput(created=1)


def notify_ready_for_vendor(account_id: str, execution: str, settings: Settings) -> StepOutput:
    """The account is prepared: the AAC workspace admin can trigger the data plane (seed 000, V1)."""
    notify.publish(settings, notify.message("READY_FOR_VENDOR", account_id=account_id, execution=execution))
    return StepOutput(created=1)
