"""SNS notifications: one documented JSON message per event (README "Notifications")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from mlplane import aws, polling
from mlplane.config import Settings
from mlplane.errors import MlplaneError, NotificationFailed, translate
from mlplane.observability import logger

if TYPE_CHECKING:
    from mlplane.ledger import Ledger

Event = Literal[
    "READY_FOR_VENDOR",
    "WAITING",
    "READY",
    "ROLLED_BACK",
    "ROLLBACK_INCOMPLETE",
    "ROLLBACK_HELD",
    "DEPROVISIONED",
    "DRIFT",
    "RECONCILED",
]
_PROGRESS = frozenset({"READY_FOR_VENDOR", "WAITING", "DRIFT"})  # not an outcome of a run


def message(
    event: Event,
    *,
    account_id: str,
    execution: str,
    error: str | None = None,
    deferred: list[dict[str, Any]] | None = None,
    blocked: list[dict[str, Any]] | None = None,
    vendor_resources: list[dict[str, str]] | None = None,
    ways_out: list[str] | None = None,
) -> dict[str, Any]:
    """The notification document: `event` is also the outcome for the final events.

    A ROLLBACK_HELD message also names the vendor's resources that held the rollback (`vendor_resources`,
    `{"type", "id"}` each) and what the operator can do (`ways_out`); other events do not carry those keys.
    """
    held: dict[str, Any] = {}
    if vendor_resources is not None:
        held["vendor_resources"] = vendor_resources
    if ways_out is not None:
        held["ways_out"] = ways_out
    return {
        "source": "mlplane",
        "event": event,
        "account_id": account_id,
        "execution": execution,
        "outcome": None if event in _PROGRESS else event,
        "error": error,
        "deferred": deferred or [],
        "blocked": blocked or [],
        **held,
    }


def publish(settings: Settings, document: dict[str, Any]) -> None:
    """Publish to the stack's topic; no topic configured means notifications are off."""
    if not settings.topic_arn:
        return
    sns = aws.client(aws.hub_session(settings.aws_region), "sns")
    try:
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"mlplane {document['event']} {document['account_id']}"[:100],
            Message=json.dumps(document, sort_keys=True),
            MessageAttributes={"event": {"DataType": "String", "StringValue": str(document["event"])}},
        )
    except ClientError as err:
        raise translate(err, f"sns:Publish {settings.topic_arn}") from err


def deliver(settings: Settings, ledger: Ledger, document: dict[str, Any]) -> bool:
    """Publish `document` at least once per (account, execution, event) (REQUIREMENTS C10).

    The ledger's mark says it went out: a retried step that finds it publishes nothing again; one that does not
    publishes (again, if a crash came between the publish and the mark: at least once, not exactly once).
    Returns whether this call published. A failed publish raises NotificationFailed, which the ASL retries on
    its own long schedule, so a step that already wrote its status still notifies it.
    """
    account_id, execution, event = str(document["account_id"]), str(document["execution"]), str(document["event"])
    if ledger.notified(account_id, execution=execution, event=event):
        return False
    try:
        publish(settings, document)
    except MlplaneError as err:
        logger.error("notification not published", account_id=account_id, event_name=event, error=str(err))
        raise NotificationFailed(f"{event} notification for {account_id} not published: {err}") from err
    ledger.mark_notified(account_id, execution=execution, event=event)
    return True


def remind_if_due(
    settings: Settings, *, account_id: str, execution: str, waited: int, last_wait: int, waiting_for: Callable[[], str]
) -> None:
    """The WAITING reminder of a wait loop's poll that completes a day of waiting (`polling.reminder_due`);
    `waiting_for` says what for, computed only then."""
    day = polling.reminder_due(waited, last_wait)
    if day:
        remind(settings, account_id=account_id, execution=execution, day=day, waiting_for=waiting_for())


def remind(settings: Settings, *, account_id: str, execution: str, day: int, waiting_for: str) -> None:
    """A day more of waiting (REQUIREMENTS Q3). Best effort: a reminder that cannot be sent fails no wait."""
    document = message("WAITING", account_id=account_id, execution=execution)
    document["waiting_for"] = waiting_for
    document["days_waited"] = day
    try:
        publish(settings, document)
    except MlplaneError as err:
        logger.warning("reminder not sent", account_id=account_id, error=str(err))
