"""Rollback and deprovision: undo the account's recorded resources newest first (REQUIREMENTS C3, C6).

One walker for every domain: each resource type's `find`/`undo` lives with the domain that creates it
(`mlplane.rollback.registry`). A record whose id was never written (a crash between create and ledger
write) is found again by its mlplane tags. Only mlplane-tagged resources are ever removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplane import consistency, notify
from mlplane.config import Settings
from mlplane.errors import MlplaneError, RollbackIncomplete, TransientError
from mlplane.ledger import ResourceRecord, ResourceState, Status
from mlplane.member import Member
from mlplane.observability import logger, tracer
from mlplane.rollback.hold import hold_for_vendor
from mlplane.rollback.registry import Blocked, handler_for
from mlplane.steps import RollbackOutput, StepOutput, UndoneItem


def _load_domains() -> None:
    # Importing the apply modules registers their resource types.
    import mlplane.iam.apply
    import mlplane.kms.apply
    import mlplane.network.apply
    import mlplane.quotas.apply  # noqa: F401


@dataclass(frozen=True)
class UndoReport:
    removed: int
    blocked: list[UndoneItem]
    deferred: list[UndoneItem]


@tracer.capture_method(capture_response=False)
def undo_all(member: Member, records: list[ResourceRecord]) -> UndoReport:
    """Undo `records` newest first. Transient errors propagate (the workflow retries the step); a resource
    that cannot be removed is reported as blocked and the walk goes on with the others.

    A record this execution made may be seconds old: EC2 and IAM may still answer NotFound for it, which must not
    read as "gone" (the resource would be left behind), so its undo runs in `consistency.settling`. (Finding an
    intent's resource is not: most often its create failed, and NotFound is the answer.)
    """
    _load_domains()
    removed = 0
    blocked: list[UndoneItem] = []
    deferred: list[UndoneItem] = []
    for record in sorted(records, key=lambda r: r.seq, reverse=True):
        handler = handler_for(record.type)
        resource_id = (record.resource_id if record.state == ResourceState.CREATED else None) or handler.find(
            member, record
        )
        if resource_id is None:  # never created (the intent was recorded, the create never happened)
            member.ledger.record_deleted(member.account_id, key=record.key)
            continue
        try:
            with consistency.settling_for(member.execution, record):
                undone = handler.undo(member, record, resource_id)
        except TransientError:
            raise
        except MlplaneError as err:  # Blocked, or an error that a retry will not fix: name it, go on
            blocked.append(UndoneItem(type=record.type, id=resource_id, reason=str(err)))
            continue
        if undone.outcome == "deferred":
            deferred.append(UndoneItem(type=record.type, id=resource_id, reason=undone.reason))
            member.ledger.record_deferred(member.account_id, key=record.key, reason=undone.reason)
            continue
        removed += undone.outcome == "removed"
        member.ledger.record_deleted(member.account_id, key=record.key)
    return UndoReport(removed, blocked, deferred)


def teardown(member: Member, type_prefix: str) -> StepOutput:
    """Deprovision one domain: undo its live records; Blocked (after undoing the rest) if any is blocked."""
    records = [r for r in member.ledger.resources(member.account_id) if r.type.startswith(type_prefix)]
    report = undo_all(member, records)
    if report.blocked:
        raise Blocked("; ".join(f"{b.type} {b.id}: {b.reason}" for b in report.blocked))
    return StepOutput(removed=report.removed, detail={"deferred": [d.model_dump() for d in report.deferred]})


def deferred_items(member: Member) -> list[UndoneItem]:
    """Everything mlplane undid only as far as AWS allows at once, as the ledger records it."""
    return [
        UndoneItem(type=r.type, id=r.resource_id or r.key, reason=str(r.data.get("deferred", "")))
        for r in member.ledger.deferred(member.account_id)
    ]


def rollback(member: Member, settings: Settings, error: str | None) -> RollbackOutput:
    """Undo everything mlplane recorded for the account; ROLLED_BACK or ROLLBACK_INCOMPLETE, notified.

    Unless the vendor already has something in the account: then nothing is removed (ROLLBACK_HELD, C7).
    """
    held = hold_for_vendor(member, settings, error)
    if held is not None:
        return held
    ledger = member.ledger
    ledger.set_status(member.account_id, Status.ROLLING_BACK, execution=member.execution, error=error)
    report = undo_all(member, ledger.resources(member.account_id))
    removed, blocked = report.removed, report.blocked
    deferred = deferred_items(member)
    _release_allocations(member)
    outcome: Literal["ROLLED_BACK", "ROLLBACK_INCOMPLETE"] = "ROLLBACK_INCOMPLETE" if blocked else "ROLLED_BACK"
    summary = error
    if blocked:
        names = "; ".join(f"{b.type} {b.id}: {b.reason}" for b in blocked)
        summary = f"{error or 'rollback'}; rollback blocked by: {names}"
    ledger.set_status(member.account_id, Status(outcome), execution=member.execution, error=summary)
    logger.info("rollback finished", outcome=outcome, removed=removed, blocked=len(blocked))
    notify.publish(
        settings,
        notify.message(
            outcome,
            account_id=member.account_id,
            execution=member.execution,
            error=summary,
            deferred=[d.model_dump() for d in deferred],
            blocked=[b.model_dump() for b in blocked],
        ),
    )
    if blocked:
        # The execution must end with the blockers named, not only the failure that started the rollback.
        raise RollbackIncomplete(summary or "rollback blocked")
    return RollbackOutput(
        outcome=outcome,
        removed=removed,
        blocked=blocked,
        deferred=deferred,
        error=summary,
    )


def _release_allocations(member: Member) -> None:
    from mlplane.network import allocation

    allocation.release(member.ledger, member.account_id)
