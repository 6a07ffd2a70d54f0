"""Pure decisions of the quotas domain: what to request, and where each target stands (REQUIREMENTS Q2).

No clock, no uuid, no AWS: the inputs are the settings' targets and what `quotas.apply.observe` saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mlplane.config import QuotaTarget
from mlplane.quotas.models import (
    FAILED_STATUSES,
    OPEN_STATUSES,
    ObservedQuota,
    QuotaDecision,
    QuotaPlan,
    QuotaProgress,
    QuotaRequest,
    quota_key,
)


def plan(targets: Sequence[QuotaTarget], observed: Mapping[str, ObservedQuota]) -> QuotaPlan:
    """One decision per target: met (skip), reuse the open request, or file a new one.

    `observed` is keyed by `quota_key(service, quota_code)`.
    """
    decisions: list[QuotaDecision] = []
    for target in targets:
        seen = observed[quota_key(target.service, target.quota_code)]
        common = {
            "service": target.service,
            "quota_code": target.quota_code,
            "desired": target.desired,
            "applied": seen.applied,
        }
        if seen.applied >= target.desired:
            decisions.append(QuotaDecision(**common, action="met"))
            continue
        open_request = newest(request for request in seen.requests if request.status in OPEN_STATUSES)
        if open_request is not None:
            decisions.append(QuotaDecision(**common, action="reuse", request_id=open_request.id))
        else:
            decisions.append(QuotaDecision(**common, action="request"))
    return QuotaPlan(decisions=tuple(decisions))


def progress(
    targets: Sequence[QuotaTarget],
    observed: Mapping[str, ObservedQuota],
    recorded: Mapping[str, str],
    applied_before: Mapping[str, float] | None = None,
) -> tuple[QuotaProgress, ...]:
    """Where each target stands: met, still waiting on a request, or failed.

    Failed: the deciding request was denied (or not approved, invalid), its support case was closed, or it
    was approved at less than desired (REQUIREMENTS Q3): APPROVED and the applied value moved from what it
    was when the request was filed (`applied_before`, by quota key) but stays short. APPROVED with the
    applied value not moved yet is waiting: the new value may not have propagated.

    `recorded` maps a quota key to the request id the ledger holds for it. An open request wins over
    the recorded one (someone refiled); else the recorded request decides; else the newest one.
    """
    before = applied_before or {}
    result: list[QuotaProgress] = []
    for target in targets:
        key = quota_key(target.service, target.quota_code)
        seen = observed[key]
        request = _deciding_request(seen.requests, recorded.get(key))
        common = {
            "service": target.service,
            "quota_code": target.quota_code,
            "desired": target.desired,
            "applied": seen.applied,
            "request_id": request.id if request else None,
            "request_status": request.status if request else None,
        }
        if seen.applied >= target.desired:
            result.append(QuotaProgress(**common, state="met"))
        elif request is not None and request.status in FAILED_STATUSES:
            result.append(QuotaProgress(**common, state="failed"))
        elif request is not None and request.status == "APPROVED" and seen.applied > before.get(key, seen.applied):
            result.append(QuotaProgress(**common, state="failed"))  # approved at less than desired
        else:
            result.append(QuotaProgress(**common, state="waiting"))
    return tuple(result)


def newest(requests: Iterable[QuotaRequest]) -> QuotaRequest | None:
    """The most recently created request of an iterable of requests, or None."""
    chosen: QuotaRequest | None = None
    for request in requests:
        if chosen is None or request.created > chosen.created:
            chosen = request
    return chosen


def _deciding_request(requests: Sequence[QuotaRequest], recorded_id: str | None) -> QuotaRequest | None:
    open_request = newest(request for request in requests if request.status in OPEN_STATUSES)
    if open_request is not None:
        return open_request
    if recorded_id is not None:
        for request in requests:
            if request.id == recorded_id:
                return request
    return newest(requests)
