"""ValidateDeprovision: refuse while another run owns the account or the vendor's data plane exists.

Apart from `mlplane.accounts.retire` (the inputs and StartDeprovisioning), so that the function that starts a
deprovision imports none of this step's code.
"""

from __future__ import annotations

from typing import Any

from mlplane import modules
from mlplane.accounts.organization import CLOSED_STATES, organization_state
from mlplane.accounts.ownership import owner_running
from mlplane.accounts.retire import parse_retire
from mlplane.config import Settings
from mlplane.eks import watch
from mlplane.errors import Conflict
from mlplane.ledger import Ledger, Status
from mlplane.member import Member
from mlplane.steps import ValidateDeprovisionOutput

# Another run owns the account in these states: deprovisioning must wait for it to end.
_BUSY = frozenset({Status.PROVISIONING, Status.ROLLING_BACK})


def validate_deprovision(
    raw: Any, execution: str, ledger: Ledger, member_of: Any, settings: Settings
) -> ValidateDeprovisionOutput:
    """Refuse while another run owns the account or the vendor's cluster exists; nothing is changed then."""
    start = parse_retire(raw)
    account_id = start.account_id
    current = ledger.status(account_id)
    if current is None or current.status == Status.DEPROVISIONED:
        return ValidateDeprovisionOutput(account_id=account_id, execution=execution, action="noop")
    if current.status in _BUSY and owner_running(current, settings):  # an owner that ended blocks nobody (C8)
        raise Conflict(f"account {account_id} is {current.status} by execution {current.execution}; deprovision later")
    if organization_state(account_id, settings) in CLOSED_STATES:
        # Its role can no longer be assumed: settle the hub's records without reaching into the account.
        if current.status != Status.DEPROVISIONING or current.execution != execution:
            ledger.set_status(account_id, Status.DEPROVISIONING, execution=execution)
        return ValidateDeprovisionOutput(account_id=account_id, execution=execution, action="closed")
    member: Member = member_of(account_id)
    cluster = watch.vendor_cluster(member, settings)
    if cluster is not None:
        raise Conflict(
            f"vendor EKS cluster {cluster} still exists in {account_id}: deprovision the data plane in AAC "
            "first (Admin Console > Private Data Handling), then run deprovision again"
        )
    # A module may refuse while what it offers is in use (M2: an analyst's provisioned product), before any change.
    modules.deprovision_check(member, settings, (r.type for r in ledger.resources(account_id)))
    if current.status != Status.DEPROVISIONING or current.execution != execution:
        ledger.set_status(account_id, Status.DEPROVISIONING, execution=execution)
    return ValidateDeprovisionOutput(account_id=account_id, execution=execution, action="deprovision")
