"""The inputs that start provisioning: a Control Tower lifecycle event, or an operator's manual start."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from mlplane.errors import InputRejected
from mlplane.types import AccountId


class _Lenient(BaseModel):
    # AWS adds fields to its events over time: accept them, validate what mlplane reads.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class OrganizationalUnit(_Lenient):
    organizationalUnitName: str
    organizationalUnitId: str


class ManagedAccount(_Lenient):
    accountName: str = ""
    accountId: AccountId


class ManagedAccountStatus(_Lenient):
    organizationalUnit: OrganizationalUnit
    account: ManagedAccount
    state: Literal["SUCCEEDED", "FAILED", "IN_PROGRESS"]
    message: str = ""


class ServiceEventDetails(_Lenient):
    createManagedAccountStatus: ManagedAccountStatus | None = None
    updateManagedAccountStatus: ManagedAccountStatus | None = None


class ControlTowerDetail(_Lenient):
    eventName: Literal["CreateManagedAccount", "UpdateManagedAccount"]
    eventSource: Literal["controltower.amazonaws.com"] = "controltower.amazonaws.com"
    serviceEventDetails: ServiceEventDetails


class EventBridgeEnvelope(BaseModel):
    """The envelope of every EventBridge event (the EventBridge user guide's "Amazon EventBridge events"
    structure; the fields of Powertools' EventBridgeModel, whose parser package would add ~80 ms to each
    handler's cold import)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any
    replay_name: str | None = Field(default=None, alias="replay-name")


class ControlTowerEvent(EventBridgeEnvelope):
    """`aws.controltower` / `AWS Service Event via CloudTrail` for CreateManagedAccount or UpdateManagedAccount."""

    source: Literal["aws.controltower"]
    detail_type: Literal["AWS Service Event via CloudTrail"] = Field(alias="detail-type")
    detail: ControlTowerDetail

    @property
    def status(self) -> ManagedAccountStatus:
        details = self.detail.serviceEventDetails
        status = details.createManagedAccountStatus or details.updateManagedAccountStatus
        if status is None:
            raise InputRejected(f"Control Tower event {self.id} has no managed account status")
        return status

    @property
    def account_id(self) -> str:
        return self.status.account.accountId


class ManualStart(BaseModel):
    """What an operator passes to StartExecution (README "Operate")."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: AccountId
    requested_by: str = Field(default="operator", max_length=128)
    reason: str = Field(default="", max_length=512)
    # reconcile: converge a READY account to the plan (REQUIREMENTS D2); never rolls it back.
    action: Literal["provision", "reconcile", "adopt"] = "provision"


def _kind(value: Any) -> str:
    if isinstance(value, dict) and ("detail-type" in value or "source" in value or "detail" in value):
        return "event"
    return "manual"


StartInput = Annotated[
    Annotated[ControlTowerEvent, Tag("event")] | Annotated[ManualStart, Tag("manual")], Discriminator(_kind)
]
_ADAPTER: TypeAdapter[ControlTowerEvent | ManualStart] = TypeAdapter(StartInput, config=ConfigDict(defer_build=True))


DEPROVISION_ACTION = "deprovision"
"""A manual input's `"action"` that asks for the deprovision workflow; provisioning refuses it."""


def asks_deprovision(raw: Any) -> bool:
    """A manual input with `"action": "deprovision"`: it belongs to the deprovision workflow."""
    return isinstance(raw, dict) and raw.get("action") == DEPROVISION_ACTION


def parse_start(raw: Any) -> ControlTowerEvent | ManualStart:
    """Parse the workflow's input; one-line InputRejected naming the first problem."""
    if not isinstance(raw, dict):
        raise InputRejected(f"input must be a JSON object, got {type(raw).__name__}")
    if asks_deprovision(raw):  # never provision an account its operator asked to take apart
        raise InputRejected(
            f'input says "action": "{DEPROVISION_ACTION}": start the deprovision workflow (mlplane deprovision), '
            "not provisioning"
        )
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as err:
        # The account id is what an operator needs to see first; otherwise report the first problem.
        problems = err.errors()
        first = next((p for p in problems if {"accountId", "account_id"} & set(map(str, p["loc"]))), problems[0])
        where = ".".join(str(part) for part in first["loc"][1:]) or "input"
        kind = "Control Tower event" if _kind(raw) == "event" else "manual start input"
        raise InputRejected(f"invalid {kind}: {where}: {first['msg']}") from err


def account_of(start: ControlTowerEvent | ManualStart) -> str:
    return start.account_id
