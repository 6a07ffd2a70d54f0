"""Every AWS call in the sandbox passes here, inside moto's dispatch (BotocoreStubber.__call__).

Deciding here rather than in a botocore `before-send` handler matters: botocore emits `before-send` to every
handler and takes the first answer, so an error returned by another handler would still let moto run the
request (a "failed" CreateVpc would create a VPC). Here a failed call never reaches moto.

For each call: identify account, region and principal; count it and apply `--fail`; run fidelity rules
(`mlplane_sandbox.rules`); answer from an emulator or from moto; run after-rules; record it if mlplane's own
code made it; apply `--crash`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import types
import uuid
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlparse

import botocore.endpoint
import botocore.session
import botocore.waiter
import xmltodict
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from mlplane.aws import new_session
from mlplane_sandbox import authorization, faults, recording, rules
from mlplane_sandbox.clock import clock
from mlplane_sandbox.fidelity import stepfunctions as fidelity_stepfunctions

_ACCESS_KEY = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/")
_original_call = BotocoreStubber.__call__
_state_lock = threading.Lock()
_conditional_write_lock = threading.Lock()
_installed = False
_fault_plan = faults.FaultPlan()
_hub_account = "123456789012"
_principals: dict[str, str] = {}  # actor name -> principal ARN in the hub (a Lambda function's role)


class CallStats:
    """What the sandbox's calls cost (`make bench`): how many, moto's own time for each, time in fidelity rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.moto_seconds: list[float] = []  # one per call moto answered
        self.rule_seconds = 0.0  # before/after rules and emulators: what the stricter sandbox costs
        self.calls = 0

    def add(self, *, moto: float | None = None, rules: float = 0.0) -> None:
        with self._lock:
            self.calls += 1
            self.rule_seconds += rules
            if moto is not None:
                self.moto_seconds.append(moto)


_stats = CallStats()


def stats() -> CallStats:
    return _stats


def reset_stats() -> None:
    global _stats  # noqa: PLW0603 - one tally per measured run
    _stats = CallStats()


# botocore event names carry the hyphenated service id, which is not always the model's name.
_MODEL_NAMES = {
    "sfn": "stepfunctions",
    "eventbridge": "events",
    "resource-groups-tagging-api": "resourcegroupstaggingapi",
    "secrets-manager": "secretsmanager",
    "service-catalog": "servicecatalog",
}


@cache
def _protocol(service: str) -> str:
    made = new_session().client(_MODEL_NAMES.get(service, service), region_name="us-east-1")  # type: ignore[call-overload]
    model = made.meta.service_model
    # The protocol the client speaks: botocore picks it from the model's `protocols` by its own priority (e.g.
    # servicecatalog lists smithy-rpc-v2-cbor first and json second; botocore speaks json to it).
    return str(model.resolved_protocol)


def configure(
    *, plan: faults.FaultPlan | None = None, hub_account: str | None = None, principals: dict[str, str] | None = None
) -> None:
    global _fault_plan, _hub_account  # noqa: PLW0603 - the sandbox's single configuration
    with _state_lock:
        _fault_plan = plan or faults.FaultPlan()
        if hub_account:
            _hub_account = hub_account
        _principals.clear()
        _principals.update(principals or {})


def _identity(request: AWSPreparedRequest) -> tuple[str, str, str, str | None]:
    """(account_id, region, principal ARN, session policy) of the credentials that signed the request: an
    assumed role's credentials carry the Policy of their AssumeRole (each of mlplane's member sessions has its
    purpose's own), other credentials none."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    auth = str(request.headers.get("Authorization", ""))
    match = _ACCESS_KEY.search(auth)
    access_key = match.group(1) if match else "AKIAEXAMPLE"
    region = match.group(2) if match else "us-east-1"
    header = request.headers.get("x-moto-account-id")
    if isinstance(header, bytes):
        header = header.decode()
    account = str(header or get_account_id_from(access_key))
    for partition in ("aws",):
        backend = sts_backends[account][partition]
        role = backend.get_assumed_role_from_access_key(access_key)
        if role is not None:
            role_name = role.role_arn.split("/")[-1]
            principal = f"arn:aws:sts::{account}:assumed-role/{role_name}/{role.session_name}"
            return account, region, principal, role.policy or None
    actor = recording.current_actor()
    principal = _principals.get(actor or "", f"arn:aws:iam::{account}:root")
    return account, region, principal, None


def _params(service: str, request: AWSPreparedRequest) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes):
        text = body.decode("utf-8", errors="replace")
    elif body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    else:  # a stream
        text = ""
    protocol = _protocol(service)
    if protocol in ("query", "ec2"):
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    data: dict[str, Any] = {}
    if text:
        try:
            loaded = json.loads(text)
            data = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            data = {}
    if protocol.startswith("rest"):
        data["__path"] = urlparse(request.url).path
        data["__host"] = urlparse(request.url).hostname or ""
        data["__method"] = request.method
    return data


def error_response(service: str, code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    """The error as the service's protocol would send it."""
    request_id = str(uuid.uuid4())
    protocol = _protocol(service)
    safe = xmltodict.unparse({"m": message})[len('<?xml version="1.0" encoding="utf-8"?>\n<m>') : -len("</m>")]
    if protocol == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{safe}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return status, {"Content-Type": "text/xml"}, body.encode()
    if protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{safe}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode()
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    if protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.1"
        return status, headers, json.dumps({"__type": code, "message": message}).encode()
    headers["Content-Type"] = "application/json"
    return status, headers, json.dumps({"message": message}).encode()


def _to_json(value: Any) -> Any:
    if hasattr(value, "timestamp"):
        return value.timestamp()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _parsed(service: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        if _protocol(service) in ("query", "ec2"):
            return dict(xmltodict.parse(body))
        loaded = json.loads(body)
        return loaded if isinstance(loaded, dict) else {}
    except Exception:  # an unparseable body is the after-rule's problem, not the caller's
        return {}


def _respond(request: AWSPreparedRequest, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


def _intercepted_call(self: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
    if not self.enabled:
        return None
    parts = event_name.split(".")
    if len(parts) < 3:
        return _original_call(self, event_name, request, **kwargs)
    service, operation = parts[1], parts[2]
    account, region, principal, policy = _identity(request)
    actor = recording.current_actor()
    match = _ACCESS_KEY.search(str(request.headers.get("Authorization", "")))
    params = _params(service, request)
    call = rules.Call(
        service,
        operation,
        account,
        region,
        params,
        principal,
        actor is not None,
        policy,
        access_key=match.group(1) if match else "",
    )
    name = f"{_call_prefix(service)}:{operation}"
    ordinal = _fault_plan.count(name) if actor is not None else 0
    # Read before the call changes anything: a delete is authorised against the tags its resource had.
    describe = authorization.describe if account != _hub_account else authorization.describe_hub
    authorized = describe(call, name) if actor is not None else ()

    def finish(ok: bool, error: str | None = None) -> None:
        if actor is not None:
            recording.record(recording.ApiCall(principal, name, ok, actor, account, error, authorized, policy))

    fault = _fault_plan.failure_for(name, ordinal) if actor is not None else None
    if fault is not None:
        finish(False, fault.code)
        message = f"injected fault: {name} call {ordinal}"
        return _respond(request, *error_response(service, fault.code, message, faults.status_for(fault.code)))
    timing = _Timing()
    try:
        answered = _answer(self, event_name, request, call, timing, **kwargs)
    except rules.AwsError as err:
        finish(False, err.code)
        _stats.add(rules=timing.rules)
        return _respond(request, *error_response(service, err.code, err.message, err.status))
    if answered is None:
        return None
    status, headers, body = answered
    ok = status < 300
    if ok:
        started = time.perf_counter()
        _run_after_rules(call, body)
        timing.rules += time.perf_counter() - started
    _stats.add(moto=timing.moto, rules=timing.rules)
    finish(ok, None if ok else _error_code(service, body))
    if ok and actor is not None and _fault_plan.crash_for(name, ordinal) is not None:
        raise faults.LambdaCrash(f"{name} call {ordinal}")
    return _respond(request, status, headers, body)


class _Timing:
    """Where one call's time went: moto's answer, or the sandbox's own rules and emulators."""

    def __init__(self) -> None:
        self.moto: float | None = None
        self.rules = 0.0


def _answer(
    stubber: BotocoreStubber,
    event_name: str,
    request: AWSPreparedRequest,
    call: rules.Call,
    timing: _Timing,
    **kwargs: Any,
) -> tuple[int, dict[str, str], bytes] | None:
    """Fidelity rules first, then an emulator or moto; raises AwsError for a refused call."""
    started = time.perf_counter()
    try:
        for rule in rules.before_rules(call.service, call.operation):
            rule(call)
        emulated = rules.emulator(call.service, call.operation)
        answer = emulated(call) if emulated is not None else None  # None: the emulator lets moto answer
        if isinstance(answer, tuple):
            return answer
        if answer is not None:
            body = json.dumps(answer, default=_to_json).encode()
            return 200, {"Content-Type": "application/x-amz-json-1.1"}, body
    finally:
        timing.rules += time.perf_counter() - started
    started = time.perf_counter()
    if call.service == "dynamodb" and "ConditionExpression" in call.params:
        # moto evaluates a condition and writes in two steps; DynamoDB does both atomically.
        with _conditional_write_lock:
            response = _original_call(stubber, event_name, request, **kwargs)
    else:
        response = _original_call(stubber, event_name, request, **kwargs)
    timing.moto = time.perf_counter() - started
    if response is None:
        return None
    return response.status_code, dict(response.headers), response.content


def _run_after_rules(call: rules.Call, body: bytes) -> None:
    after = rules.after_rules(call.service, call.operation)
    if after:
        parsed = _parsed(call.service, body)
        for rule in after:
            rule(call, parsed)


def _call_prefix(service: str) -> str:
    # IAM's signing name is the service id; "service-quotas" is "servicequotas" in IAM actions.
    names = {
        "service-quotas": "servicequotas",
        "service-catalog": "servicecatalog",
        "sfn": "states",
        "eventbridge": "events",
        "secrets-manager": "secretsmanager",
    }
    return names.get(service, service)


def _error_code(service: str, body: bytes) -> str:
    data = _parsed(service, body)
    if "Response" in data:
        return str(data["Response"].get("Errors", {}).get("Error", {}).get("Code", "Unknown"))
    if "ErrorResponse" in data:
        return str(data["ErrorResponse"].get("Error", {}).get("Code", "Unknown"))
    return str(data.get("__type", "Unknown")).split("#")[-1]


# -- time: everything that would sleep advances the sandbox clock instead ------------------------------
class _VirtualTime(types.SimpleNamespace):
    pass


def _virtual_time_module() -> _VirtualTime:
    return _VirtualTime(
        sleep=lambda seconds: clock().sleep(float(seconds)),
        time=time.time,
        monotonic=time.monotonic,
        perf_counter=time.perf_counter,
    )


def _patch_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    virtual = _virtual_time_module()
    botocore.endpoint.time = virtual  # type: ignore[attr-defined]  # back-off between retries
    botocore.waiter.time = virtual  # type: ignore[attr-defined]  # waiter polling
    retrier_decl.time = virtual  # type: ignore[attr-defined,assignment]  # ASL Retry intervals

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:  # ASL Wait states
        clock().advance(float(wait_seconds))

    wait_function.WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]


def install() -> None:
    """Route every moto-served call through this module (idempotent)."""
    global _installed  # noqa: PLW0603
    with _state_lock:
        if _installed:
            return
        BotocoreStubber.__call__ = _intercepted_call  # type: ignore[method-assign]
        _patch_time()
        fidelity_stepfunctions.install()  # States.ALL catches what it does in AWS, no more
        _load_rules()
        _installed = True


def uninstall() -> None:
    global _installed  # noqa: PLW0603
    with _state_lock:
        BotocoreStubber.__call__ = _original_call  # type: ignore[method-assign]
        _installed = False


def _load_rules() -> None:
    """Import the rule modules so they register (each is optional while it is being written)."""
    import importlib

    for module in (
        "mlplane_sandbox.fidelity.network",
        "mlplane_sandbox.fidelity.iam_kms",
        "mlplane_sandbox.fidelity.secretsmanager",
        "mlplane_sandbox.fidelity.organizations",
        "mlplane_sandbox.fidelity.consistency",
        "mlplane_sandbox.emulators.service_quotas",
        "mlplane_sandbox.emulators.cloudformation",
        "mlplane_sandbox.emulators.lambda_functions",
        "mlplane_sandbox.vendor",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or not module.startswith(err.name):
                raise
