"""RequestQuotas and its wait loop: raise the member account's Service Quotas (REQUIREMENTS Q1-Q2).

`run` files at most one increase request per quota and records its id in the ledger; `poll` reports
whether every target is met, fails fast on a denied request and fails at the configured timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlplane import notify, observability, polling
from mlplane.config import QuotaTarget, Settings
from mlplane.errors import QuotaDenied, TimedOut, error_code, translate
from mlplane.observability import logger
from mlplane.quotas.models import OPEN_STATUSES, ObservedQuota, QuotaDecision, QuotaProgress, QuotaRequest, quota_key
from mlplane.quotas.plan import newest, plan, progress
from mlplane.rollback.handler import Handler, Undone
from mlplane.steps import PollOutput, StepOutput

if TYPE_CHECKING:
    from mypy_boto3_service_quotas import ServiceQuotasClient

    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member

RESOURCE_TYPE = "quotas:request"


# -- observe ----------------------------------------------------------------------------------------------
def observe(member: Member, targets: tuple[QuotaTarget, ...]) -> dict[str, ObservedQuota]:
    """Applied value and increase requests of each target quota, keyed by `quota_key`."""
    client: ServiceQuotasClient = member.client("service-quotas")
    observed: dict[str, ObservedQuota] = {}
    for target in targets:
        name, applied = _applied(client, target.service, target.quota_code, member.account_id)
        observed[quota_key(target.service, target.quota_code)] = ObservedQuota(
            service=target.service,
            quota_code=target.quota_code,
            quota_name=name,
            applied=applied,
            requests=_requests(client, target.service, target.quota_code, member.account_id),
        )
    return observed


def _applied(client: ServiceQuotasClient, service: str, code: str, account_id: str) -> tuple[str, float]:
    """(quota name, applied value); quotas with no applied value report their AWS default."""
    try:
        quota = client.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
    except ClientError as err:
        if error_code(err) != "NoSuchResourceException":
            raise translate(err, f"service-quotas:GetServiceQuota {service}/{code} in {account_id}") from err
        try:
            quota = client.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
        except ClientError as default_err:
            raise translate(
                default_err, f"service-quotas:GetAWSDefaultServiceQuota {service}/{code} in {account_id}"
            ) from default_err
    return str(quota.get("QuotaName", "")), float(quota.get("Value", 0.0))


def _requests(client: ServiceQuotasClient, service: str, code: str, account_id: str) -> tuple[QuotaRequest, ...]:
    found: list[QuotaRequest] = []
    paginator = client.get_paginator("list_requested_service_quota_change_history_by_quota")
    try:
        for page in paginator.paginate(ServiceCode=service, QuotaCode=code):
            found.extend(_request_from(item) for item in page.get("RequestedQuotas", []))
    except ClientError as err:
        if error_code(err) == "NoSuchResourceException":
            return ()
        raise translate(
            err, f"service-quotas:ListRequestedServiceQuotaChangeHistoryByQuota {service}/{code} in {account_id}"
        ) from err
    return tuple(found)


def _request_from(item: Any) -> QuotaRequest:
    created = item.get("Created")
    return QuotaRequest(
        id=str(item["Id"]),
        status=item["Status"],
        desired=float(item.get("DesiredValue", 0.0)),
        created=created.timestamp() if created is not None else 0.0,
    )


# -- RequestQuotas ----------------------------------------------------------------------------------------
def run(member: Member, settings: Settings) -> StepOutput:
    """File an increase request for each target below its desired value, unless one is already open."""
    quota_plan = plan(settings.quota_targets, observe(member, settings.quota_targets))
    created = existing = 0
    detail: list[dict[str, Any]] = []
    for decision in quota_plan.decisions:
        request_id: str | None = None
        if decision.action != "met":
            request_id, made = _ensure_request(member, decision)
            created += int(made)
            existing += int(not made)
        else:
            existing += 1
        logger.info(
            "quota decided",
            quota=f"{decision.service}/{decision.quota_code}",
            action=decision.action,
            applied=decision.applied,
            desired=decision.desired,
            request_id=request_id,
        )
        detail.append(
            {
                "service": decision.service,
                "quota_code": decision.quota_code,
                "applied": decision.applied,
                "desired": decision.desired,
                "action": decision.action,
                "request_id": request_id,
            }
        )
    return StepOutput(created=created, existing=existing, detail={"quotas": detail})


def _ensure_request(member: Member, decision: QuotaDecision) -> tuple[str, bool]:
    client: ServiceQuotasClient = member.client("service-quotas")
    service, code = decision.service, decision.quota_code

    def find() -> str | None:
        # An open request (ours from a run that crashed before the ledger write, or anyone's) is reused.
        return _open_request_id(client, service, code, member.account_id)

    def create() -> str:
        return _file_request(client, decision, member.account_id)

    return member.ensure(
        key=decision.key,
        type=RESOURCE_TYPE,
        find=find,
        create=create,
        # `applied` when filed: an approval that moves it but stays short is a partial one (Q3).
        data={"service": service, "quota_code": code, "desired": decision.desired, "applied": decision.applied},
    )


def _open_request_id(client: ServiceQuotasClient, service: str, code: str, account_id: str) -> str | None:
    request = newest(r for r in _requests(client, service, code, account_id) if r.status in OPEN_STATUSES)
    return request.id if request else None


def _file_request(client: ServiceQuotasClient, decision: QuotaDecision, account_id: str) -> str:
    what = f"service-quotas:RequestServiceQuotaIncrease {decision.service}/{decision.quota_code} in {account_id}"
    try:
        answer = client.request_service_quota_increase(
            ServiceCode=decision.service, QuotaCode=decision.quota_code, DesiredValue=decision.desired
        )
    except ClientError as err:
        if error_code(err) == "ResourceAlreadyExistsException":
            # Someone filed one between our look and our request: that open request is the one to wait on.
            racing = _open_request_id(client, decision.service, decision.quota_code, account_id)
            if racing is not None:
                return racing
        raise translate(err, what) from err
    return str(answer["RequestedQuota"]["Id"])


# -- the wait loop ----------------------------------------------------------------------------------------
def poll(member: Member, settings: Settings, attempt: int, waited_seconds: int = 0, last_wait: int = 0) -> PollOutput:
    """Ready when every target's applied value meets its desired value.

    Raises QuotaDenied when a target's request is decided and the applied value is still short: denied
    (or not approved, or invalid), closed with the support case (CASE_CLOSED), or approved at less than
    desired (the applied value moved from what it was when the request was filed); the message names the
    granted (applied) value and the request id (REQUIREMENTS Q3). Raises
    TimedOut at the poll that comes after `quota_timeout_seconds` of waiting with a target still short.
    Between polls the workflow waits `wait_seconds`, backing off (mlplane.polling); each day of waiting is
    notified again.
    """
    targets = settings.quota_targets
    recorded: dict[str, str] = {}
    applied_before: dict[str, float] = {}
    for target in targets:
        record = member.ledger.resource(member.account_id, quota_key(target.service, target.quota_code))
        if record is not None and record.resource_id:
            recorded[record.key] = record.resource_id
            if isinstance(record.data.get("applied"), (int, float)):
                applied_before[record.key] = float(record.data["applied"])
    states = progress(targets, observe(member, targets), recorded, applied_before)
    detail = "; ".join(_describe(state) for state in states)
    for state in states:
        if state.state == "failed":
            raise QuotaDenied(_refusal(state, member.account_id))
    ready = all(state.state == "met" for state in states)
    ended = ready or polling.timed_out(waited_seconds, settings.quota_timeout_seconds)
    if ended:
        observability.wait_ended("quotas", waited_seconds)
    if not ready and ended:
        short = next(state for state in states if state.state != "met")
        request = f" (request {short.request_id} {short.request_status})" if short.request_id else " (no request)"
        raise TimedOut(
            f"quota {short.label} in {member.account_id} not raised to {short.desired:g}"
            f" after {settings.quota_timeout_seconds} s{request}"
        )
    if not ready:

        def waiting_for() -> str:
            short = next(state for state in states if state.state != "met")
            return f"quota {short.label} raised to {short.desired:g}: {_describe(short)}"

        notify.remind_if_due(
            settings,
            account_id=member.account_id,
            execution=member.execution,
            waited=waited_seconds,
            last_wait=last_wait,
            waiting_for=waiting_for,
        )
    delay, total = polling.next_wait(
        settings.poll_interval_seconds, attempt, waited_seconds, settings.quota_timeout_seconds
    )
    return PollOutput(ready=ready, attempt=attempt + 1, detail=detail, wait_seconds=delay, waited_seconds=total)


def _refusal(state: QuotaProgress, account_id: str) -> str:
    """Why a decided request leaves the quota short: its status, the value AWS granted, the request id."""
    where = f"quota {state.label} in {account_id}"
    request = f"request {state.request_id}"
    granted = f"{state.applied:g}"
    if state.request_status == "APPROVED":
        return f"{where} approved at {granted}, not {state.desired:g} ({request})"
    if state.request_status == "CASE_CLOSED":
        return f"{where} case closed with the applied value {granted}, not {state.desired:g} ({request})"
    status = (state.request_status or "denied").lower().replace("_", " ")
    return f"{where} {status} ({request})"


def _describe(state: QuotaProgress) -> str:
    text = f"{state.label} {state.applied:g}/{state.desired:g} {state.state}"
    if state.request_id:
        text += f" (request {state.request_id} {state.request_status})"
    return text


# -- rollback ---------------------------------------------------------------------------------------------
def _find_request(member: Member, record: ResourceRecord) -> str | None:
    client: ServiceQuotasClient = member.client("service-quotas")
    service, code = str(record.data.get("service", "")), str(record.data.get("quota_code", ""))
    if not service or not code:
        return None
    return _open_request_id(client, service, code, member.account_id)


def _undo_request(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    # Service Quotas has no API to withdraw a request; a raised quota costs nothing unused.
    return Undone("deferred", reason=f"quota increase request {resource_id} cannot be withdrawn")


HANDLERS = {RESOURCE_TYPE: Handler(find=_find_request, undo=_undo_request)}
"""The undo handler of quota requests (`mlplane.rollback.registry`)."""
