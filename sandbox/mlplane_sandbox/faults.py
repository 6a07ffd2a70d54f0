"""Fault injection: `--fail SERVICE:Operation[=ErrorCode][@N|@N-M]` and `--crash SERVICE:Operation[@N]`.

A failed call has no effect: the interceptor answers it instead of moto, with the code's real HTTP status,
so botocore's retry logic sees what it would see in AWS. A crash lets the Nth call succeed and then kills
the Lambda that made it (`LambdaCrash`, which no handler code can catch). `@N-M` is an outage that ends: calls
N to M fail, later ones go through.

A fault is only evidence if it happened: the operation must exist in botocore's model of the service
(`check_operation`), and the plan remembers which faults fired so that one that never did is reported.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import cache

_SPEC = re.compile(
    r"^(?P<service>[a-z0-9-]+):(?P<op>[A-Z][A-Za-z0-9]+)(?:=(?P<code>[A-Za-z0-9.]+))?(?:@(?P<n>\*|[1-9]\d*)(?:-(?P<last>[1-9]\d*))?)?$"
)

_STATUS = {
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalServerError": 500,
    "InternalServerException": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
    "TooManyRequestsException": 429,
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "UnauthorizedOperation": 403,
    "NoSuchEntity": 404,  # IAM's NoSuchEntityException
}


def status_for(code: str) -> int:
    return _STATUS.get(code, 400)


class FaultSpecError(ValueError):
    pass


class LambdaCrash(BaseException):
    """The Lambda dies right after a call succeeded (timeout, out of memory)."""


@dataclass(frozen=True)
class Fault:
    service: str
    operation: str
    code: str
    nth: int | None  # None: every call
    last: int | None = None  # with nth: calls nth..last fail (an outage that ends); None: only the nth
    spec: str = ""

    @property
    def call(self) -> str:
        return f"{self.service}:{self.operation}"

    def covers(self, n: int) -> bool:
        if self.nth is None:
            return True
        return self.nth <= n <= (self.last if self.last is not None else self.nth)


# mlplane's call names use the IAM action prefix; botocore names a few services otherwise.
_BOTOCORE_NAMES = {"servicequotas": "service-quotas", "states": "stepfunctions"}


@cache
def _operations(prefix: str) -> frozenset[str] | None:
    """The operations of the service with this IAM prefix in botocore's model, or None if botocore has none."""
    import botocore.session

    loader = botocore.session.get_session().get_component("data_loader")
    service = _BOTOCORE_NAMES.get(prefix, prefix)
    if service not in loader.list_available_services("service-2"):
        return None
    model = loader.load_service_model(service, "service-2")
    return frozenset(model["operations"])


def check_operation(flag: str, spec: str, service: str, operation: str) -> None:
    """A fault on an operation AWS does not have could never fire: refuse it up front."""
    if service in _BOTOCORE_NAMES.values():
        prefix = next(k for k, v in _BOTOCORE_NAMES.items() if v == service)
        raise FaultSpecError(f"{flag} {spec!r}: name the service by its IAM prefix, {prefix!r}")
    operations = _operations(service)
    if operations is None:
        raise FaultSpecError(f"{flag} {spec!r}: botocore has no service {service!r}")
    if operation not in operations:
        raise FaultSpecError(f"{flag} {spec!r}: service {service!r} has no operation {operation!r} in botocore's model")


def parse_fault(spec: str, *, crash: bool = False) -> Fault:
    flag = "--crash" if crash else "--fail"
    match = _SPEC.match(spec.strip())
    if not match or (crash and (match["code"] or match["last"])):
        form = "SERVICE:Operation[@N]" if crash else "SERVICE:Operation[=ErrorCode][@N|@N-M]"
        raise FaultSpecError(f"invalid {flag} {spec!r}: expected {form}")
    n, last = match["n"], match["last"]
    if n == "*" and last:
        raise FaultSpecError(f"invalid {flag} {spec!r}: a range is @N-M with numbers")
    nth = None if n in (None, "*") else int(n)
    if crash and nth is None:
        nth = 1
    if last is not None and nth is not None and int(last) < nth:
        raise FaultSpecError(f"invalid {flag} {spec!r}: the range {nth}-{last} ends before it starts")
    check_operation(flag, spec, match["service"], match["op"])
    return Fault(
        match["service"],
        match["op"],
        match["code"] or "InternalError",
        nth,
        int(last) if last is not None else None,
        spec.strip(),
    )


@dataclass
class FaultPlan:
    fails: list[Fault] = field(default_factory=list)
    crashes: list[Fault] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _fired: set[int] = field(default_factory=set)  # ids of the faults that made a call fail or a Lambda die
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, call: str) -> int:
        """Count one more mlplane call of `call`; returns its ordinal (1-based)."""
        with self._lock:
            self._counts[call] = self._counts.get(call, 0) + 1
            return self._counts[call]

    def failure_for(self, call: str, n: int) -> Fault | None:
        return self._fire(next((f for f in self.fails if f.call == call and f.covers(n)), None))

    def crash_for(self, call: str, n: int) -> Fault | None:
        return self._fire(next((f for f in self.crashes if f.call == call and f.covers(n)), None))

    def _fire(self, fault: Fault | None) -> Fault | None:
        if fault is not None:
            with self._lock:
                self._fired.add(id(fault))
        return fault

    def unfired(self) -> list[str]:
        """The `--fail`/`--crash` options that never made anything happen."""
        with self._lock:
            return [
                f"{flag} {fault.spec or fault.call}"
                for flag, group in (("--fail", self.fails), ("--crash", self.crashes))
                for fault in group
                if id(fault) not in self._fired
            ]
