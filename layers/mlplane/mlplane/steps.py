"""The input and output models of the workflow's Task states, as the ASL wires them.

One name per step: state `CreateNetwork` <-> functions/create_network <-> CreateNetworkInput/Output.
"""

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlplane.types import AccountId, BlueprintName, ExecutionName


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ValidateAccountInput(_Model):
    """The workflow's own input (event or manual start) and the execution name."""

    input: Any
    execution: ExecutionName


class ValidateDeprovisionOutput(_Model):
    account_id: AccountId
    execution: ExecutionName
    # closed: the account was closed in Organizations; its role can no longer be assumed, so only the hub's
    # records can be settled (MarkDeprovisioned), nothing in the member account.
    action: Literal["deprovision", "noop", "closed"]


class StepInput(_Model):
    """What every step after ValidateAccount receives."""

    account_id: AccountId
    execution: ExecutionName


class MarkDeprovisionedInput(StepInput):
    action: Literal["deprovision", "closed"] = "deprovision"


class PollState(_Model):
    """A wait loop's state, carried in the execution: polls are counted, not timed (the sandbox compresses time).

    A backed-off loop (the quota and vendor waits) also carries the seconds its Wait states waited so far and the next
    wait (`Wait` reads it with SecondsPath).
    """

    ready: bool = False
    attempt: int = 0
    detail: str = ""
    waited_seconds: int = 0
    wait_seconds: int = 0


class ValidateAccountOutput(_Model):
    account_id: AccountId
    execution: ExecutionName
    ou: str
    # resume: the account is ROLLBACK_HELD; the execution goes back to the waits (WaitForEks), creating nothing.
    action: Literal["provision", "noop", "resume", "reconcile", "adopt"]
    # The network blueprint the account is built with (N6), chosen here once; CreateNetwork builds it.
    network_blueprint: BlueprintName = "default"
    poll_interval_seconds: int
    # The optional modules enabled for this account, resolved once here (`mlplane.modules.enabled_for`).
    modules: list[str] = Field(default_factory=list)
    polls: dict[str, PollState] = Field(
        default_factory=lambda: {name: PollState() for name in ("quotas", "eks", "credential_role", "kms_policy")}
    )


class StepOutput(_Model):
    """What a create/remove step reports: counts of what it created (or removed) and what it found."""

    created: int = 0
    existing: int = 0
    removed: int = 0
    detail: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def combine(cls, *outputs: "StepOutput") -> "StepOutput":
        detail: dict[str, Any] = {}
        for output in outputs:
            detail.update(output.detail)
        return cls(
            created=sum(o.created for o in outputs),
            existing=sum(o.existing for o in outputs),
            removed=sum(o.removed for o in outputs),
            detail=detail,
        )


class PollInput(StepInput):
    attempt: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)  # backed-off loops: seconds waited before this poll
    wait_seconds: int = Field(default=0, ge=0)  # backed-off loops: of those, since the previous poll


class PollOutput(_Model):
    ready: bool
    attempt: int
    detail: str = ""
    waited_seconds: int = 0  # backed-off loops: seconds waited before the next poll
    wait_seconds: int = 0  # backed-off loops: the wait before the next poll


class CreateNetworkInput(StepInput):
    network_blueprint: BlueprintName  # ValidateAccount's choice, never resolved again
    # adopt (D3): what was built by hand per seed 000 is matched and recorded ADOPTED instead of being created
    action: Literal["provision", "adopt"] = "provision"


class CreateIamInput(StepInput):
    action: Literal["provision", "adopt"] = "provision"


class RequestQuotasInput(StepInput):
    pass


class PatchKmsPolicyInput(PollInput):
    """A poll: PatchKmsPolicy loops while KMS does not yet accept the vendor's new role as a principal."""


class MarkReadyInput(StepInput):
    pass


class ApplyModulesInput(StepInput):
    """The modules ValidateAccount enabled for the account: ApplyModules applies those and no other."""

    modules: list[str] = Field(default_factory=list)


class CaughtError(BaseModel):
    """The `$.error` Step Functions' Catch puts in the state (ResultPath)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    error: str = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")


class RollbackInput(StepInput):
    error: CaughtError | None = None
    # The Rollback loop's state (REQUIREMENTS C8): which walk this is and the seconds waited before it.
    attempt: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)

    @property
    def error_text(self) -> str | None:
        """`Error: message` of the failure that started the rollback (Lambda's Cause is a JSON document)."""
        if self.error is None:
            return None
        return f"{self.error.error}: {cause_message(self.error.cause)}"


def cause_message(cause: str) -> str:
    try:
        document = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return cause
    if isinstance(document, dict) and "errorMessage" in document:
        return str(document["errorMessage"])
    return cause


class UndoneItem(_Model):
    type: str
    id: str
    reason: str = ""


class RecordRollbackIncompleteInput(RollbackInput):
    """The last resort after a Rollback (or a deprovision step) failed for good: the error it failed with."""


class RollbackOutput(_Model):
    # ROLLING_BACK: an outage left something; the workflow waits `retry_in_seconds` and walks again (`retry`).
    outcome: Literal["ROLLED_BACK", "ROLLBACK_INCOMPLETE", "ROLLBACK_HELD", "DEPROVISIONED", "ROLLING_BACK"]
    removed: int
    blocked: list[UndoneItem] = Field(default_factory=list)
    deferred: list[UndoneItem] = Field(default_factory=list)
    error: str | None = None
    retry: bool = False
    attempt: int = 0
    waited_seconds: int = 0
    retry_in_seconds: int = 0


class ListReadyAccountsInput(_Model):
    """ReconcileFleet's first step: its execution names each account's reconcile."""

    execution: ExecutionName
