"""What the ledger stores: one status item per account and one item per created resource."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    PENDING = "PENDING"
    PROVISIONING = "PROVISIONING"
    READY = "READY"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    ROLLBACK_INCOMPLETE = "ROLLBACK_INCOMPLETE"
    # A rollback was due after the vendor had resources in the account: nothing the vendor uses was removed
    # (REQUIREMENTS C7). An operator resumes it (a start goes back to the waits) or deprovisions it.
    ROLLBACK_HELD = "ROLLBACK_HELD"
    DEPROVISIONING = "DEPROVISIONING"
    DEPROVISIONED = "DEPROVISIONED"


class AccountStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: str
    status: Status
    execution: str
    updated_at: str
    error: str | None = None


class ResourceState(StrEnum):
    INTENT = "intent"  # recorded before the create call: the id may exist in AWS without being known here
    CREATED = "created"
    DELETED = "deleted"
    DEFERRED = "deferred"  # undone as far as AWS allows at once (a key scheduled for deletion, a quota request)
    # Made by hand before mlplane came (`mlplane adopt`, REQUIREMENTS D3): tracked, tagged mlplane:managed=adopted,
    # never deleted; rollback and deprovision only take mlplane's tags off it and release it (RELEASED).
    ADOPTED = "adopted"
    RELEASED = "released"


ENDED = frozenset({ResourceState.DELETED, ResourceState.DEFERRED, ResourceState.RELEASED})
"""States of a record mlplane no longer holds: a new intent for its key starts afresh."""


class ResourceRecord(BaseModel):
    """One resource mlplane created (or is about to create) in a member account."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: str
    key: str = Field(description="stable plan key, unique in the account, e.g. 'subnet/eks_node/a'")
    type: str = Field(description="resource type the rollback dispatches on, e.g. 'ec2:subnet'")
    step: str
    execution: str
    state: ResourceState
    resource_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="what is needed to undo it")
    seq: int = Field(description="creation order; rollback walks newest first")


class AccountEntry(BaseModel):
    """One account as `mlplane accounts` lists it: its status item, OU and resource records."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    status: AccountStatus
    ou: str | None = None
    resources: list[ResourceRecord] = Field(default_factory=list)
