"""Rollback and deprovision: undo the account's recorded resources newest first (REQUIREMENTS C3, C6).

One walker for every domain: each resource type's `find`/`undo` lives with the domain that creates it
(`mlplane.rollback.registry`). A record whose id was never written (a crash between create and ledger
write) is found again by its mlplane tags. Only mlplane-tagged resources are ever removed.
"""

from __future__ import annotations

from typing import Literal

from mlplane import notify
from mlplane.config import Settings
from mlplane.errors import MlplaneError, TransientError
from mlplane.ledger import ResourceRecord, Status
from mlplane.member import Member
from mlplane.observability import logger, tracer
from mlplane.rollback.registry import Blocked, handler_for
from mlplane.steps import RollbackOutput, UndoneItem


def _load_domains() -> None:
    # Importing the apply modules registers their resource types.
    import mlplane.iam.apply
    import mlplane.kms.apply
    import mlplane.network.apply
    import mlplane.quotas.apply  # noqa: F401


@tracer.capture_method(capture_response=False)
def undo_all(member: Member, records: list[ResourceRecord]) -> tuple[int, list[UndoneItem], list[UndoneItem]]:
    """Undo `records` newest first; returns (removed, blocked, deferred). Transient errors propagate (retry)."""
    _load_domains()
    removed = 0
    blocked: list[UndoneItem] = []
    deferred: list[UndoneItem] = []
    for record in sorted(records, key=lambda r: r.seq, reverse=True):
        handler = handler_for(record.type)
        resource_id = record.resource_id or handler.find(member, record)
        if resource_id is None:
            member.ledger.record_deleted(member.account_id, key=record.key)
            continue
        try:
            undone = handler.undo(member, record, resource_id)
        except TransientError:
            raise
        except Blocked as err:
            blocked.append(UndoneItem(type=record.type, id=resource_id, reason=str(err)))
            continue
        except MlplaneError as err:
            blocked.append(UndoneItem(type=record.type, id=resource_id, reason=str(err)))
            continue
        if undone.outcome == "deferred":
            deferred.append(UndoneItem(type=record.type, id=resource_id, reason=undone.reason))
        else:
            removed += 1
        member.ledger.record_deleted(member.account_id, key=record.key)
    return removed, blocked, deferred


def rollback(member: Member, settings: Settings, error: str | None) -> RollbackOutput:
    """Undo everything mlplane recorded for the account; ROLLED_BACK or ROLLBACK_INCOMPLETE, notified."""
    ledger = member.ledger
    ledger.set_status(member.account_id, Status.ROLLING_BACK, execution=member.execution, error=error)
    removed, blocked, deferred = undo_all(member, ledger.resources(member.account_id))
    _release_allocations(member)
    outcome: Literal["ROLLED_BACK", "ROLLBACK_INCOMPLETE"] = "ROLLBACK_INCOMPLETE" if blocked else "ROLLED_BACK"
    summary = error
    if blocked:
        names = ", ".join(f"{b.type} {b.id}" for b in blocked)
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
