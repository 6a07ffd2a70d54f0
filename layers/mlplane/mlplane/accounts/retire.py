"""Deprovisioning's inputs and StartDeprovisioning, which starts the deprovision workflow with one.

Started by hand (`{"account_id": ..., "requested_by": ...}`) or by the Organizations CloudTrail events of an
account closed (`CloseAccount`) or moved to the retirement OU (`MoveAccount`). The workflow's steps are
`mlplane.accounts.deprovision` (ValidateDeprovision), the domains' teardowns and `mlplane.rollback.whole`
(MarkDeprovisioned): the function that starts it only parses the input and would otherwise import all of theirs.
"""

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from mlplane.accounts.start import start_execution
from mlplane.config import Settings
from mlplane.errors import InputRejected
from mlplane.types import AccountId


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
