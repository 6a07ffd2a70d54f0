"""Deprovisioning: the inputs that start it, the refusal while the vendor's data plane exists, the end state.

Started by hand (`{"account_id": ..., "requested_by": ...}`) or by the Organizations CloudTrail events of an
account closed (`CloseAccount`) or moved to the retirement OU (`MoveAccount`).
"""

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from mlplane import modules, notify
from mlplane.accounts.ownership import owner_running
from mlplane.accounts.start import start_execution
from mlplane.accounts.validate import CLOSED_STATES, organization_state
from mlplane.config import Settings
from mlplane.eks import watch
from mlplane.errors import Conflict, InputRejected, RollbackIncomplete, TransientError
from mlplane.ledger import AccountStatus, Ledger, Status
from mlplane.member import Member
from mlplane.network.undo import CIDR_ALLOCATION, release_in_closed_account
from mlplane.rollback.run import deferred_items, undo_all
from mlplane.steps import StepOutput, UndoneItem, ValidateDeprovisionOutput
from mlplane.types import AccountId

# Another run owns the account in these states: deprovisioning must wait for it to end.
_BUSY = frozenset({Status.PROVISIONING, Status.ROLLING_BACK})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class OrganizationsRequest(_Lenient):
    accountId: AccountId
    destinationParentId: str = ""


class OrganizationsCall(_Lenient):
    eventName: Literal["CloseAccount", "MoveAccount"]
    eventSource: Literal["organizations.amazonaws.com"]
    requestParameters: OrganizationsRequest
    # CloudTrail records a refused call too, with its error: nothing was closed or moved then.
    errorCode: str | None = None


class OrganizationsEvent(_Lenient):
    """`aws.organizations` / `AWS API Call via CloudTrail` for CloseAccount or MoveAccount."""

    id: str
    source: Literal["aws.organizations"]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: OrganizationsCall

    @property
    def account_id(self) -> str:
        return self.detail.requestParameters.accountId


class ManualDeprovision(BaseModel):
    """What an operator passes to the deprovision workflow; `mlplane deprovision` and the sample input say
    `"action": "deprovision"`, which tells it apart from a manual start (the provision workflow refuses it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    action: Literal["deprovision"] = "deprovision"
    account_id: AccountId
    requested_by: str = Field(default="operator", max_length=128)
    reason: str = Field(default="", max_length=512)


def _kind(value: Any) -> str:
    return "event" if isinstance(value, dict) and ("detail-type" in value or "source" in value) else "manual"


_ADAPTER: TypeAdapter[OrganizationsEvent | ManualDeprovision] = TypeAdapter(
    Annotated[
        Annotated[OrganizationsEvent, Tag("event")] | Annotated[ManualDeprovision, Tag("manual")],
        Discriminator(_kind),
    ],
    config=ConfigDict(defer_build=True),
)


def parse_retire(raw: Any) -> OrganizationsEvent | ManualDeprovision:
    """A deprovision input; an Organizations event of a call that failed is refused (nothing was retired)."""
    start = parse_retire_shape(raw)
    if isinstance(start, OrganizationsEvent) and start.detail.errorCode is not None:
        raise InputRejected(
            f"{start.detail.eventName} of {start.account_id} failed ({start.detail.errorCode}): nothing to deprovision"
        )
    return start


def parse_retire_shape(raw: Any) -> OrganizationsEvent | ManualDeprovision:
    """A deprovision input's shape, whether or not the call it records succeeded."""
    if not isinstance(raw, dict):
        raise InputRejected(f"input must be a JSON object, got {type(raw).__name__}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "input"
        raise InputRejected(f"invalid deprovision input: {where}: {first['msg']}") from err


def deprovision_execution_name(start: OrganizationsEvent | ManualDeprovision, *, now: datetime | None = None) -> str:
    if isinstance(start, OrganizationsEvent):
        return f"dp-{start.account_id}-{hashlib.sha256(start.id.encode()).hexdigest()[:16]}"
    return f"dp-{start.account_id}-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%f')}"


def start_deprovisioning(raw: Any, settings: Settings, state_machine_arn: str) -> dict[str, Any]:
    start = parse_retire(raw)
    return start_execution(
        raw,
        account_id=start.account_id,
        name=deprovision_execution_name(start),
        settings=settings,
        state_machine_arn=state_machine_arn,
    )


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


def mark_deprovisioned(member: Member, settings: Settings) -> StepOutput:
    """Undo what is left (quota requests are reported, not undone), DEPROVISIONED, notify.

    The CIDR slot is freed by the walk (the allocation's undo, once the VPC is verified gone), nowhere else.
    """
    ledger = member.ledger
    if _deprovisioned_before(ledger.status(member.account_id), member.execution):
        return StepOutput(existing=1)
    report = undo_all(member, ledger.resources(member.account_id))
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
