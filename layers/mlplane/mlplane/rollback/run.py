"""Rollback and deprovision: undo the account's recorded resources newest first (REQUIREMENTS C3, C6, C8).

One walker, `undo_all`, for every walk: each resource type's `find`/`undo` lives with the domain that creates it.
A walk is given the handlers it may meet: a deprovision step tearing down one domain (`teardown`) that domain's,
the walks of the whole ledger (`mlplane.rollback.whole`: Rollback, MarkDeprovisioned) the table of all of them
(`mlplane.rollback.registry`), so that each step imports the domains it undoes and no other. A record whose id was
never written (a crash between create and ledger write) is found again by its mlplane tags. Only mlplane-tagged
resources are ever removed.

The walk never stops at one resource (C8): an error on one is collected and the walk goes on with the others.
What an AWS outage left (throttling, 5xx) is `unfinished`: the provision workflow's Rollback loop waits and
walks again, for up to `rollback_retry_seconds`; what something else holds, or what a retry will not fix, is
`blocked`. Either way the rollback ends in a terminal status that names what is left, and notifies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from botocore.exceptions import BotoCoreError

from mlplane import consistency, notify
from mlplane.config import Settings
from mlplane.errors import Blocked, MlplaneError, RollbackIncomplete, TransientError
from mlplane.ledger import Ledger, ResourceRecord, ResourceState, Status
from mlplane.member import Member
from mlplane.observability import logger
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import RollbackOutput, StepOutput, UndoneItem

# The statuses a rollback or deprovision ends in: nobody is left waiting for the execution that wrote them.
FINAL = frozenset({Status.ROLLED_BACK, Status.ROLLBACK_INCOMPLETE, Status.ROLLBACK_HELD, Status.DEPROVISIONED})


@dataclass
class UndoReport:
    removed: int = 0
    gone: int = 0
    released: int = 0  # adopted resources let go, left in place (D3)
    blocked: list[UndoneItem] = field(default_factory=list)  # something else holds it, or a retry will not help
    unfinished: list[UndoneItem] = field(default_factory=list)  # an outage stopped it: a later walk may finish
    deferred: list[UndoneItem] = field(default_factory=list)
    left_keys: list[str] = field(default_factory=list)
    unfinished_keys: list[str] = field(default_factory=list)

    @property
    def left(self) -> list[UndoneItem]:
        """Everything still there, as the notification and the ledger's error name it."""
        return self.unfinished + self.blocked


def undo_all(member: Member, records: list[ResourceRecord], handlers: Mapping[str, Handler]) -> UndoReport:
    """Undo `records` newest first with `handlers` (by ledger type), going on past an error on any one of them
    (C8); a record of a type `handlers` lacks is blocked (RollbackIncomplete).

    When something is blocked, the blocked records are walked once more: a later undo (the VPC's sweep removes the
    mlplane resources left in it, e.g. an Elastic IP or an attachment that was in use when its own record came
    up) may have removed them since, and the report must name only what is really still there (C9).

    A record this execution made may be seconds old: EC2 and IAM may still answer NotFound for it, which must not
    read as "gone" (the resource would be left behind), so its undo runs in `consistency.settling`. (Finding an
    intent's resource is not: most often its create failed, and NotFound is the answer.)
    """
    first = _walk(member, records, handlers)
    if not first.blocked:
        return first
    # Only what was blocked: what an outage left is walked again by the caller's retry, after a wait.
    blocked = {r.key for r in records if r.key in set(first.left_keys)} - set(first.unfinished_keys)
    again = _walk(member, [r for r in records if r.key in blocked], handlers)
    again.removed += first.removed
    again.gone += first.gone
    again.released += first.released
    again.unfinished = first.unfinished + again.unfinished
    again.unfinished_keys = first.unfinished_keys + again.unfinished_keys
    again.left_keys = first.unfinished_keys + again.left_keys
    again.deferred = first.deferred + again.deferred
    return again


def _walk(member: Member, records: list[ResourceRecord], handlers: Mapping[str, Handler]) -> UndoReport:
    report = UndoReport()
    for record in sorted(records, key=lambda r: r.seq, reverse=True):
        resource_id = record.resource_id if record.state in (ResourceState.CREATED, ResourceState.ADOPTED) else None
        if member.deadline.seconds_left() <= 0:  # the Lambda's time is up: the next walk goes on from here
            report.unfinished.append(_item(record, resource_id, TransientError("not reached before the timeout")))
            report.left_keys.append(record.key)
            report.unfinished_keys.append(record.key)
            continue
        try:
            handler = handlers.get(record.type)
            if handler is None:
                raise RollbackIncomplete(f"no undo handler for resource type {record.type}")
            if record.state == ResourceState.ADOPTED and resource_id is not None:
                # made by hand, adopted (D3): never deleted; mlplane's tags come off and the ledger lets it go
                undone = handler.release(member, record, resource_id) if handler.release else Undone("gone")
                member.ledger.record_released(member.account_id, key=record.key)
                report.released += 1
                continue
            acting = member.for_purpose(handler.purpose)  # e.g. the access key: its own session policy
            resource_id = resource_id or handler.find(acting, record)
            if resource_id is None:  # never created (the intent was recorded, the create never happened)
                member.ledger.record_deleted(member.account_id, key=record.key)
                report.gone += 1
                continue
            with consistency.settling_for(member.execution, record):
                undone = handler.undo(acting, record, resource_id)
            if undone.outcome == "deferred":
                member.ledger.record_deferred(member.account_id, key=record.key, reason=undone.reason)
                report.deferred.append(UndoneItem(type=record.type, id=resource_id, reason=undone.reason))
                continue
            member.ledger.record_deleted(member.account_id, key=record.key)
        except (TransientError, BotoCoreError) as err:  # an outage (or a lost connection): a later walk may pass
            report.unfinished.append(_item(record, resource_id, err))
            report.left_keys.append(record.key)
            report.unfinished_keys.append(record.key)
            continue
        except MlplaneError as err:  # Blocked, or an error that a retry will not fix: name it, go on
            report.blocked.append(_item(record, resource_id, err))
            report.left_keys.append(record.key)
            continue
        except Exception as err:
            logger.exception("undo failed", type=record.type, key=record.key)
            report.blocked.append(_item(record, resource_id, err))
            report.left_keys.append(record.key)
            continue
        if undone.outcome == "removed":
            report.removed += 1
        else:
            report.gone += 1
    return report


def _item(record: ResourceRecord, resource_id: str | None, err: BaseException) -> UndoneItem:
    reason = str(err) if isinstance(err, MlplaneError) else f"{type(err).__name__}: {err}"
    return UndoneItem(type=record.type, id=resource_id or record.resource_id or record.key, reason=reason[:500])


def describe(items: list[UndoneItem]) -> str:
    """What is left and why, as the ledger's error and the notifications name it."""
    return "; ".join(f"{i.type} {i.id}: {i.reason}" for i in items)


def teardown(member: Member, domain: str, handlers: Mapping[str, Handler]) -> StepOutput:
    """Deprovision one domain ("network", "iam", "kms", "modules"): undo its live records, those of the types
    `handlers` (the domain's) undoes, with the walker rollback uses.

    Raises TransientError if an outage left something (the step's Retry walks again), else Blocked naming what
    something else holds (after undoing all the rest); records are marked as they go, so a re-run resumes.
    """
    records = [r for r in member.ledger.resources(member.account_id) if r.type in handlers]
    report = undo_all(member, records, handlers)
    logger.info("teardown", domain=domain, removed=report.removed, gone=report.gone, left=len(report.left))
    if report.unfinished:
        raise TransientError(f"deprovision of {domain} in {member.account_id} unfinished: {describe(report.left)}")
    if report.blocked:
        raise Blocked(f"deprovision of {domain} in {member.account_id} blocked by: {describe(report.blocked)}")
    return StepOutput(
        removed=report.removed, existing=report.gone, detail={"deferred": [d.model_dump() for d in report.deferred]}
    )


def deferred_items(ledger: Ledger, account_id: str) -> list[UndoneItem]:
    """Everything mlplane undid only as far as AWS allows at once, as the ledger records it."""
    return [
        UndoneItem(type=r.type, id=r.resource_id or r.key, reason=str(r.data.get("deferred", "")))
        for r in ledger.deferred(account_id)
    ]


def record_incomplete(
    ledger: Ledger, settings: Settings, account_id: str, execution: str, error: str | None
) -> RollbackOutput:
    """The last resort when a rollback or deprovision step failed for good: a terminal status, notified (C8).

    Reads only the hub's ledger (the member account may be what fails). What the ledger still lists is named
    as left; a status this execution already settled (the step failed after writing it) is kept and notified
    again. If this fails too, the execution fails and the status it leaves blocks nobody: the next run sees its
    owner is no longer running and takes over (`mlplane.accounts.ownership`).
    """
    current = ledger.status(account_id)
    left = [
        UndoneItem(type=r.type, id=r.resource_id or r.key, reason="not verified removed")
        for r in ledger.resources(account_id)
    ]
    deferred = deferred_items(ledger, account_id)
    summary = f"{error or 'rollback failed'}" + (f"; left: {describe(left)}" if left else "")
    if current is not None and current.status in FINAL and current.execution == execution and not left:
        status, summary = current.status, current.error or summary
    else:
        status = Status.ROLLBACK_INCOMPLETE
        ledger.set_status(account_id, status, execution=execution, error=summary)
    outcome: Literal["ROLLED_BACK", "ROLLBACK_INCOMPLETE", "DEPROVISIONED"] = status.value  # type: ignore[assignment]
    logger.info("rollback recorded", outcome=outcome, left=len(left))
    notify.deliver(
        settings,
        ledger,
        notify.message(
            outcome,
            account_id=account_id,
            execution=execution,
            error=summary,
            deferred=[d.model_dump() for d in deferred],
            blocked=[b.model_dump() for b in left],
        ),
    )
    return RollbackOutput(outcome=outcome, removed=0, blocked=left, deferred=deferred, error=summary)
