"""A rollback held for the vendor (REQUIREMENTS C7): after the hand-off, never pull the floor from under it.

Once AAC has anything in the account (`mlplane.eks.footprint`), every resource mlplane made is in use by it:
the network carries its cluster and nodes, the IAM service account and policy are what AAC automates with, and
the vault key's policy statement is what `credential-service-role` decrypts with. Nothing may be removed, not
even the KMS statement mlplane added (that alone would break the data plane's credentials). So the account ends
ROLLBACK_HELD, with everything recorded in the ledger as it is, and the operator is told what holds it and the
two ways out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplane import notify
from mlplane.eks import footprint as vendor
from mlplane.ledger import Status
from mlplane.observability import logger
from mlplane.steps import RollbackOutput

if TYPE_CHECKING:
    from mlplane.config import Settings
    from mlplane.member import Member


def ways_out(account_id: str) -> list[str]:
    """What the operator can do with a held account (the notification and the README say the same)."""
    return [
        "remove the data plane in AAC (Admin Console > Private Data Handling), then deprovision: "
        f"mlplane deprovision {account_id}",
        "or retry the data plane in AAC, then resume: "
        f"mlplane resume {account_id} (any start of the provision workflow for the account resumes it)",
    ]


def hold_for_vendor(member: Member, settings: Settings, error: str | None) -> RollbackOutput | None:
    """ROLLBACK_HELD, notified, if the vendor has anything in the account; None (roll back) if it has nothing.

    Idempotent: a retried Rollback task looks again and writes and notifies the same.
    """
    footprint = vendor.vendor_footprint(member, settings)
    if not footprint:
        return None
    names = vendor.summary(footprint)
    summary = (
        f"{error or 'rollback'}; rollback held: the vendor's data plane is in the account ({names}); "
        "nothing it uses was removed"
    )
    member.ledger.set_status(member.account_id, Status.ROLLBACK_HELD, execution=member.execution, error=summary)
    logger.warning("rollback held for the vendor", vendor_resources=len(footprint), error=error)
    notify.deliver(
        settings,
        member.ledger,
        notify.message(
            "ROLLBACK_HELD",
            account_id=member.account_id,
            execution=member.execution,
            error=summary,
            vendor_resources=[{"type": r.type, "id": r.id} for r in footprint],
            ways_out=ways_out(member.account_id),
        ),
    )
    return RollbackOutput(outcome="ROLLBACK_HELD", removed=0, error=summary)
