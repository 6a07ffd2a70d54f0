"""Fault injection: `--fail SERVICE:Operation[=ErrorCode][@N]` and `--crash SERVICE:Operation[@N]`.

A failed call has no effect: the interceptor answers it instead of moto, with the code's real HTTP status,
so botocore's retry logic sees what it would see in AWS. A crash lets the Nth call succeed and then kills
the Lambda that made it (`LambdaCrash`, which no handler code can catch).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

_SPEC = re.compile(
    r"^(?P<service>[a-z0-9-]+):(?P<op>[A-Z][A-Za-z0-9]+)(?:=(?P<code>[A-Za-z0-9.]+))?(?:@(?P<n>\*|[1-9]\d*))?$"
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

    @property
    def call(self) -> str:
        return f"{self.service}:{self.operation}"


def parse_fault(spec: str, *, crash: bool = False) -> Fault:
    match = _SPEC.match(spec.strip())
    if not match or (crash and match["code"]):
        form = "SERVICE:Operation[@N]" if crash else "SERVICE:Operation[=ErrorCode][@N]"
        raise FaultSpecError(f"invalid {'--crash' if crash else '--fail'} {spec!r}: expected {form}")
    n = match["n"]
    nth = None if n in (None, "*") else int(n)
    if crash and nth is None:
        nth = 1
    return Fault(match["service"], match["op"], match["code"] or "InternalError", nth)


@dataclass
class FaultPlan:
    fails: list[Fault] = field(default_factory=list)
    crashes: list[Fault] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, call: str) -> int:
        """Count one more mlplane call of `call`; returns its ordinal (1-based)."""
        with self._lock:
            self._counts[call] = self._counts.get(call, 0) + 1
            return self._counts[call]

    def failure_for(self, call: str, n: int) -> Fault | None:
        return next((f for f in self.fails if f.call == call and (f.nth is None or f.nth == n)), None)

    def crash_for(self, call: str, n: int) -> Fault | None:
        return next((f for f in self.crashes if f.call == call and f.nth == n), None)
