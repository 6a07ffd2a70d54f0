"""Service Quotas as the sandbox answers it: applied values and increase requests per account and region.

moto has only a couple of read calls; this module emulates the five calls mlplane makes (plus the
account-wide history the sandbox's inventory reads), with botocore's request/response shapes and error
codes (botocore/data/service-quotas/2019-06-24/service-2.json).

Increase requests move on the sandbox's VirtualClock according to a scenario:
- `approved`: PENDING -> CASE_OPENED after 60 s -> APPROVED after 300 s; the applied value becomes the desired one;
- `denied`: PENDING -> CASE_OPENED after 60 s -> DENIED after 300 s;
- `pending`: PENDING -> CASE_OPENED after 60 s, and stays open;
- `already-applied`: every known quota's applied value is already 2500, so nothing needs requesting;
- `slow`: PENDING -> CASE_OPENED after 60 s -> APPROVED two days after the request (a support case, as a
  2,500-vCPU request on a new account usually is);
- `partial`: as `approved`, but AWS grants less: APPROVED with the applied value 1,000;
- `case-closed`: PENDING -> CASE_OPENED after 60 s -> CASE_CLOSED after 300 s, the applied value unchanged
  (the outcome is only in the support case).

`refuse` makes an operation answer one of the errors the model lists for it (e.g. TooManyRequestsException,
QuotaExceededException, DependencyAccessDeniedException), with the model's shape: HTTP 400 and
`{"__type": code, "Message": text}`, as the awsJson protocol sends it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.rules import AwsError, Call, emulate

SERVICE = "service-quotas"
SCENARIOS = ("approved", "denied", "pending", "already-applied", "slow", "partial", "case-closed")
CASE_OPENED_AFTER = 60.0
DECIDED_AFTER = 300.0
SLOW_DECIDED_AFTER = 2 * 86_400.0
PARTIAL_GRANT = 1000.0
ALREADY_APPLIED_VALUE = 2500.0
_DECISION = {  # scenario -> (seconds after the request, final status, applied value it grants or None)
    "approved": (DECIDED_AFTER, "APPROVED", None),
    "already-applied": (DECIDED_AFTER, "APPROVED", None),
    "denied": (DECIDED_AFTER, "DENIED", None),
    "slow": (SLOW_DECIDED_AFTER, "APPROVED", None),
    "partial": (DECIDED_AFTER, "APPROVED", PARTIAL_GRANT),
    "case-closed": (DECIDED_AFTER, "CASE_CLOSED", None),
}
REFUSABLE = {  # error code -> the text AWS sends with it (botocore service-2.json documentation)
    "TooManyRequestsException": "Due to throttling, the request was denied. Slow down the rate of request calls.",
    "QuotaExceededException": "You have exceeded your service quota. To perform the requested action, remove some"
    " of the relevant resources, or use Service Quotas to request a service quota increase.",
    "DependencyAccessDeniedException": "You can't perform this action because a dependency does not have access.",
    "ServiceException": "Something went wrong.",
}
OPEN = frozenset({"PENDING", "CASE_OPENED"})
_STATUSES = OPEN | {"APPROVED", "DENIED", "CASE_CLOSED", "NOT_APPROVED", "INVALID_REQUEST"}
_DEFAULT_PAGE = 20


@dataclass(frozen=True)
class QuotaSpec:
    """A quota the emulated Service Quotas knows."""

    service_code: str
    service_name: str
    quota_code: str
    quota_name: str
    default: float
    adjustable: bool = True
    unit: str = "None"
    description: str = ""
    applied_available: bool = True  # False: GetServiceQuota answers NoSuchResourceException (default only)
    usage_metric: dict[str, Any] | None = None


EC2_ON_DEMAND_STANDARD = QuotaSpec(
    service_code="ec2",
    service_name="Amazon Elastic Compute Cloud (Amazon EC2)",
    quota_code="L-1216C47A",
    quota_name="Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    default=5.0,
    description=(
        "Maximum number of vCPUs assigned to the Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances."
    ),
    usage_metric={
        "MetricNamespace": "AWS/Usage",
        "MetricName": "ResourceCount",
        "MetricDimensions": {"Class": "Standard/OnDemand", "Resource": "vCPU", "Service": "EC2", "Type": "Resource"},
        "MetricStatisticRecommendation": "Maximum",
    },
)


KNOWN_QUOTAS: tuple[QuotaSpec, ...] = (EC2_ON_DEMAND_STANDARD,)
"""The quotas every fresh store knows; `add_quota` adds more for one sandbox run."""


def _key(spec: QuotaSpec) -> tuple[str, str]:
    return (spec.service_code, spec.quota_code)


@dataclass
class _Request:
    id: str
    account_id: str
    region: str
    spec: QuotaSpec
    desired: float
    scenario: str
    created: float
    requester: str
    status: str = "PENDING"
    case_id: str | None = None
    last_updated: float = 0.0


@dataclass
class _Region:
    applied: dict[tuple[str, str], float] = field(default_factory=dict)
    requests: list[_Request] = field(default_factory=list)


@dataclass
class _Store:
    scenario: str = "approved"
    per_account: dict[str, str] = field(default_factory=dict)
    clock: VirtualClock | None = None
    regions: dict[tuple[str, str], _Region] = field(default_factory=dict)
    catalog: dict[tuple[str, str], QuotaSpec] = field(default_factory=lambda: {_key(q): q for q in KNOWN_QUOTAS})
    counter: int = 0
    refusals: list[_Refusal] = field(default_factory=list)


@dataclass
class _Refusal:
    operation: str
    code: str
    account_id: str | None
    remaining: int | None  # None: every call


_lock = threading.RLock()
_store = _Store()


# -- the sandbox runner's controls ------------------------------------------------------------------------
def reset(scenario: str = "approved", clock: VirtualClock | None = None) -> None:
    """Forget every account's quotas and requests; requests then move on `clock` (default: the sandbox's)."""
    global _store  # noqa: PLW0603 - one store per sandbox run, swapped between runs
    _check_scenario(scenario)
    with _lock:
        _store = _Store(scenario=scenario, clock=clock)
    if clock is not None:
        store = _store

        def settle_on_advance(_now: float) -> None:
            if store is _store:
                settle()

        clock.on_advance(settle_on_advance)


def set_scenario(name: str, account_id: str | None = None) -> None:
    """The scenario of new requests (and of accounts not yet seen), for every account or one."""
    _check_scenario(name)
    with _lock:
        if account_id is None:
            _store.scenario = name
        else:
            _store.per_account[account_id] = name


def refuse(operation: str, code: str, *, account_id: str | None = None, times: int | None = None) -> None:
    """The next `times` calls (default: every call) of `operation` (for one account, or any) answer `code`."""
    if code not in REFUSABLE:
        raise ValueError(f"unknown Service Quotas error {code!r} (one of {', '.join(REFUSABLE)})")
    with _lock:
        _store.refusals.append(_Refusal(operation, code, account_id, times))


def add_quota(spec: QuotaSpec) -> None:
    """Make another quota known (e.g. a configured EMR Serverless target)."""
    with _lock:
        _store.catalog[_key(spec)] = spec


def settle() -> None:
    """Move every open request along its scenario to the clock's current time."""
    with _lock:
        now = _now()
        for region in _store.regions.values():
            for request in region.requests:
                _advance(request, region, now)


def requests(account_id: str, region: str | None = None) -> list[dict[str, Any]]:
    """The account's increase requests, oldest first, as the sandbox's inventory shows them."""
    settle()
    with _lock:
        return [
            {
                "service": r.spec.service_code,
                "quota_code": r.spec.quota_code,
                "desired": r.desired,
                "status": r.status,
                "id": r.id,
            }
            for (account, where), state in sorted(_store.regions.items())
            if account == account_id and (region is None or where == region)
            for r in state.requests
        ]


def requests_of(account_id: str) -> list[dict[str, Any]]:
    """The inventory's `quota_requests`: service, quota_code, desired, status of every request, oldest first."""
    return [
        {key: request[key] for key in ("service", "quota_code", "desired", "status")}
        for request in requests(account_id)
    ]


def applied_value(account_id: str, region: str, service_code: str, quota_code: str) -> float:
    settle()
    with _lock:
        return _region(account_id, region).applied[(service_code, quota_code)]


# -- emulated operations ----------------------------------------------------------------------------------
Answer = dict[str, Any] | tuple[int, dict[str, str], bytes]


def _refusable(operation: Callable[[Call], Answer]) -> Callable[[Call], Answer]:
    """Answer a refusal set up with `refuse` instead of the operation, in the model's error shape."""

    def answer(call: Call) -> Answer:
        with _lock:
            for refusal in _store.refusals:
                if refusal.operation != call.operation or refusal.account_id not in (None, call.account_id):
                    continue
                if refusal.remaining is not None:
                    if refusal.remaining <= 0:
                        continue
                    refusal.remaining -= 1
                body = {"__type": refusal.code, "Message": REFUSABLE[refusal.code]}
                headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": refusal.code}
                status = 500 if refusal.code == "ServiceException" else 400
                return status, headers, json.dumps(body).encode()
        return operation(call)

    answer.__name__ = operation.__name__
    answer.__doc__ = operation.__doc__
    return answer


@emulate(SERVICE, "GetServiceQuota")
@_refusable
def get_service_quota(call: Call) -> dict[str, Any]:
    spec = _spec(call)
    with _lock:
        _settle_region(call.account_id, call.region)
        if not spec.applied_available:
            raise AwsError("NoSuchResourceException", f"The applied value of quota {spec.quota_code} is not available.")
        value = _region(call.account_id, call.region).applied[(spec.service_code, spec.quota_code)]
    return {"Quota": _quota(spec, call, value)}


@emulate(SERVICE, "GetAWSDefaultServiceQuota")
@_refusable
def get_aws_default_service_quota(call: Call) -> dict[str, Any]:
    spec = _spec(call)
    return {"Quota": _quota(spec, call, spec.default)}


@emulate(SERVICE, "RequestServiceQuotaIncrease")
@_refusable
def request_service_quota_increase(call: Call) -> dict[str, Any]:
    spec = _spec(call)
    desired = _desired(call)
    if "ContextId" in call.params:
        raise AwsError("IllegalArgumentException", f"Quota {spec.quota_code} is not applied at the resource level.")
    if not spec.adjustable:
        raise AwsError("IllegalArgumentException", f"Quota {spec.quota_code} is not adjustable.")
    with _lock:
        _settle_region(call.account_id, call.region)
        state = _region(call.account_id, call.region)
        for existing in state.requests:
            if existing.spec == spec and existing.status in OPEN:
                raise AwsError(
                    "ResourceAlreadyExistsException",
                    f"Only one open service quota increase request is allowed per quota (request {existing.id}).",
                )
        current = state.applied[(spec.service_code, spec.quota_code)]
        if desired <= current:
            raise AwsError(
                "IllegalArgumentException",
                f"The requested value {desired:g} must be greater than the applied quota value {current:g}.",
            )
        _store.counter += 1
        now = _now()
        request = _Request(
            id=f"{_store.counter:08x}-5a0e-4c1d-8e2f-{int(call.account_id):012x}",
            account_id=call.account_id,
            region=call.region,
            spec=spec,
            desired=desired,
            scenario=_scenario_of(call.account_id),
            created=now,
            requester=f'{{"accountId":"{call.account_id}","callerArn":"{call.principal}"}}',
            last_updated=now,
        )
        state.requests.append(request)
        return {"RequestedQuota": _request_shape(request)}


@emulate(SERVICE, "GetRequestedServiceQuotaChange")
@_refusable
def get_requested_service_quota_change(call: Call) -> dict[str, Any]:
    request_id = _required(call, "RequestId")
    with _lock:
        _settle_region(call.account_id, call.region)
        for request in _region(call.account_id, call.region).requests:
            if request.id == request_id:
                return {"RequestedQuota": _request_shape(request)}
    raise AwsError("NoSuchResourceException", f"The request {request_id} does not exist.")


@emulate(SERVICE, "ListRequestedServiceQuotaChangeHistoryByQuota")
@_refusable
def list_requested_service_quota_change_history_by_quota(call: Call) -> dict[str, Any]:
    spec = _spec(call)
    return _history(call, lambda request: request.spec == spec)


@emulate(SERVICE, "ListRequestedServiceQuotaChangeHistory")
@_refusable
def list_requested_service_quota_change_history(call: Call) -> dict[str, Any]:
    service = call.params.get("ServiceCode")
    if service is not None and not any(code == service for code, _ in _store.catalog):
        raise AwsError("NoSuchResourceException", f"The service {service} does not exist.")
    return _history(call, lambda request: service is None or request.spec.service_code == service)


# -- internals --------------------------------------------------------------------------------------------
def _history(call: Call, keep: Callable[[_Request], bool]) -> dict[str, Any]:
    status = call.params.get("Status")
    if status is not None and status not in _STATUSES:
        raise AwsError("IllegalArgumentException", f"Invalid status {status}.")
    limit = int(call.params.get("MaxResults", _DEFAULT_PAGE))
    if not 1 <= limit <= 100:
        raise AwsError("IllegalArgumentException", "MaxResults must be between 1 and 100.")
    start = _offset(call.params.get("NextToken"))
    with _lock:
        _settle_region(call.account_id, call.region)
        matching = [
            r
            for r in reversed(_region(call.account_id, call.region).requests)  # newest first
            if keep(r) and (status is None or r.status == status)
        ]
        page = [_request_shape(r) for r in matching[start : start + limit]]
    answer: dict[str, Any] = {"RequestedQuotas": page}
    if start + limit < len(matching):
        answer["NextToken"] = base64.b64encode(str(start + limit).encode()).decode()
    return answer


def _offset(token: Any) -> int:
    if token is None:
        return 0
    try:
        return int(base64.b64decode(str(token), validate=True).decode())
    except ValueError:
        raise AwsError("InvalidPaginationTokenException", "Invalid pagination token.") from None


def _check_scenario(name: str) -> None:
    if name not in SCENARIOS:
        raise ValueError(f"unknown quota scenario {name!r} (one of {', '.join(SCENARIOS)})")


def _now() -> float:
    clock = _store.clock or clock_module.clock()
    return clock.now()


def _scenario_of(account_id: str) -> str:
    return _store.per_account.get(account_id, _store.scenario)


def _region(account_id: str, region: str) -> _Region:
    key = (account_id, region)
    state = _store.regions.get(key)
    if state is None:
        state = _Region()
        _store.regions[key] = state
    already = _scenario_of(account_id) == "already-applied"
    for (service, code), spec in _store.catalog.items():
        if (service, code) not in state.applied:
            state.applied[(service, code)] = max(spec.default, ALREADY_APPLIED_VALUE) if already else spec.default
    return state


def _settle_region(account_id: str, region: str) -> None:
    state = _region(account_id, region)
    now = _now()
    for request in state.requests:
        _advance(request, state, now)


def _advance(request: _Request, state: _Region, now: float) -> None:
    if request.status not in OPEN:
        return
    elapsed = now - request.created
    if elapsed >= CASE_OPENED_AFTER and request.status == "PENDING":
        request.status = "CASE_OPENED"
        request.case_id = f"case-{request.account_id}-{request.id[:8]}"
        request.last_updated = request.created + CASE_OPENED_AFTER
    decision = _DECISION.get(request.scenario)
    if decision is None:  # pending: the case stays open
        return
    after, status, granted = decision
    if elapsed < after:
        return
    request.status = status
    request.last_updated = request.created + after
    if status == "APPROVED":
        key = (request.spec.service_code, request.spec.quota_code)
        value = request.desired if granted is None else min(granted, request.desired)
        state.applied[key] = max(state.applied[key], value)


def _required(call: Call, name: str) -> str:
    value = call.params.get(name)
    if not isinstance(value, str) or not value:
        raise AwsError("IllegalArgumentException", f"{name} is required.")
    return value


def _spec(call: Call) -> QuotaSpec:
    service = _required(call, "ServiceCode")
    code = _required(call, "QuotaCode")
    with _lock:
        spec = _store.catalog.get((service, code))
        if spec is None:
            if not any(known == service for known, _ in _store.catalog):
                raise AwsError("NoSuchResourceException", f"The service {service} does not exist.")
            raise AwsError("NoSuchResourceException", f"The quota {code} of service {service} does not exist.")
        return spec


def _desired(call: Call) -> float:
    value = call.params.get("DesiredValue")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AwsError("IllegalArgumentException", "DesiredValue is required.")
    if not 0 <= float(value) <= 10_000_000_000:
        raise AwsError("IllegalArgumentException", f"DesiredValue {value} is out of range.")
    return float(value)


def _arn(spec: QuotaSpec, account_id: str, region: str) -> str:
    return f"arn:aws:servicequotas:{region}:{account_id}:{spec.service_code}/{spec.quota_code}"


def _quota(spec: QuotaSpec, call: Call, value: float) -> dict[str, Any]:
    quota: dict[str, Any] = {
        "ServiceCode": spec.service_code,
        "ServiceName": spec.service_name,
        "QuotaArn": _arn(spec, call.account_id, call.region),
        "QuotaCode": spec.quota_code,
        "QuotaName": spec.quota_name,
        "Value": value,
        "Unit": spec.unit,
        "Adjustable": spec.adjustable,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }
    if spec.usage_metric is not None:
        quota["UsageMetric"] = spec.usage_metric
    if spec.description:
        quota["Description"] = spec.description
    return quota


def _request_shape(request: _Request) -> dict[str, Any]:
    spec = request.spec
    shape: dict[str, Any] = {
        "Id": request.id,
        "ServiceCode": spec.service_code,
        "ServiceName": spec.service_name,
        "QuotaCode": spec.quota_code,
        "QuotaName": spec.quota_name,
        "DesiredValue": request.desired,
        "Status": request.status,
        "Created": datetime.fromtimestamp(request.created, UTC),
        "LastUpdated": datetime.fromtimestamp(request.last_updated, UTC),
        "Requester": request.requester,
        "QuotaArn": _arn(spec, request.account_id, request.region),
        "GlobalQuota": False,
        "Unit": spec.unit,
        "QuotaRequestedAtLevel": "ACCOUNT",
    }
    if request.case_id is not None:
        shape["CaseId"] = request.case_id
    return shape
