"""Where the sandbox departs from moto to behave like AWS: fidelity rules and emulated operations.

Every AWS call that reaches the sandbox passes through `mlplane_sandbox.interceptor`, which, for the
call's (service, operation):
1. runs each `@before` rule: a rule raises `AwsError` to refuse the call as AWS would (moto never sees it);
2. answers with an `@emulate`d operation if there is one (what moto lacks), else lets moto answer;
3. runs each `@after` rule with moto's parsed answer (e.g. to make a NAT gateway `pending`).

`service` is botocore's service id as in event names (`ec2`, `iam`, `kms`, `service-quotas`, `eks`),
`params` the request's parameters: the JSON body for JSON protocols, the flattened query string for
query protocols (`{"SubnetId": "subnet-1", "TagSpecification.1.ResourceType": "vpc", ...}`).
Rules reach moto's state through `moto.backends.get_backend(...)[account_id][region]`.
Error codes and HTTP statuses must be the ones the service's API reference documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    account_id: str
    region: str
    params: dict[str, Any]
    principal: str
    by_mlplane: bool = field(default=False)
    session_policy: str | None = None  # the inline session policy of the credentials that signed it (STS)
    access_key: str = field(default="")  # the signing credentials' key id (an emulator acting as the caller)


class AwsError(Exception):
    """An error answer, as the service would send it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


BeforeRule = Callable[[Call], None]
AfterRule = Callable[[Call, dict[str, Any]], None]
Emulator = Callable[[Call], "dict[str, Any] | tuple[int, dict[str, str], bytes] | None"]
"""Returns the output as a dict (JSON protocols) or a raw (status, headers, body) answer (e.g. EC2's XML);
None lets moto answer this call (an emulator that only takes over some calls, e.g. a repeated client token)."""

_before: dict[tuple[str, str], list[BeforeRule]] = {}
_after: dict[tuple[str, str], list[AfterRule]] = {}
_emulated: dict[tuple[str, str], Emulator] = {}


def before(service: str, operation: str) -> Callable[[BeforeRule], BeforeRule]:
    def register(fn: BeforeRule) -> BeforeRule:
        _before.setdefault((service, operation), []).append(fn)
        return fn

    return register


def after(service: str, operation: str) -> Callable[[AfterRule], AfterRule]:
    def register(fn: AfterRule) -> AfterRule:
        _after.setdefault((service, operation), []).append(fn)
        return fn

    return register


def emulate(service: str, operation: str) -> Callable[[Emulator], Emulator]:
    """The function returns the operation's output as a dict shaped like botocore's output model."""

    def register(fn: Emulator) -> Emulator:
        _emulated[(service, operation)] = fn
        return fn

    return register


def before_rules(service: str, operation: str) -> list[BeforeRule]:
    return _before.get((service, operation), [])


def after_rules(service: str, operation: str) -> list[AfterRule]:
    return _after.get((service, operation), [])


def emulator(service: str, operation: str) -> Emulator | None:
    return _emulated.get((service, operation))
