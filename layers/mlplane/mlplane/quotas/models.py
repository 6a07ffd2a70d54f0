"""What the quotas domain observes and decides (REQUIREMENTS Q1-Q2)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

RequestStatus = Literal[
    "PENDING", "CASE_OPENED", "APPROVED", "DENIED", "CASE_CLOSED", "NOT_APPROVED", "INVALID_REQUEST"
]
OPEN_STATUSES: frozenset[str] = frozenset({"PENDING", "CASE_OPENED"})
"""A request in one of these may still change the applied value: never file a second one beside it."""
FAILED_STATUSES: frozenset[str] = frozenset({"DENIED", "NOT_APPROVED", "INVALID_REQUEST", "CASE_CLOSED"})
"""A request in one of these will not raise the applied value any further (CASE_CLOSED: whatever the support
case granted is already applied; REQUIREMENTS Q3)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class QuotaRequest(_Model):
    """One Service Quotas increase request as ListRequestedServiceQuotaChangeHistoryByQuota reports it."""

    id: str
    status: RequestStatus
    desired: float
    created: float = 0.0  # epoch seconds; orders requests when the ledger has none recorded


class ObservedQuota(_Model):
    """A quota of the member account: its applied value and the increase requests filed for it."""

    service: str
    quota_code: str
    quota_name: str = ""
    applied: float
    requests: tuple[QuotaRequest, ...] = ()


class QuotaDecision(_Model):
    """What RequestQuotas does for one target."""

    service: str
    quota_code: str
    desired: float
    applied: float
    action: Literal["met", "reuse", "request"]
    request_id: str | None = None

    @property
    def key(self) -> str:
        return quota_key(self.service, self.quota_code)


class QuotaPlan(_Model):
    decisions: tuple[QuotaDecision, ...]


class QuotaProgress(_Model):
    """Where one target stands while the workflow waits for it."""

    service: str
    quota_code: str
    desired: float
    applied: float
    state: Literal["met", "waiting", "failed"]
    request_id: str | None = None
    request_status: RequestStatus | None = None

    @property
    def label(self) -> str:
        return f"{self.service}/{self.quota_code}"


def quota_key(service: str, quota_code: str) -> str:
    """The ledger key of the increase request for a quota (one per quota and account)."""
    return f"quota/{service}/{quota_code}"
