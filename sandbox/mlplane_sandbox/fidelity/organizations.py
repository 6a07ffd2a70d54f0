"""Account closure as AWS Organizations plays it, where moto 5.2.5 differs.

Source: the Organizations API reference, CloseAccount: "This is an asynchronous request ... While the close
account request is in progress, Account status will indicate PENDING_CLOSURE. When the close account request
completes, the status will change to SUSPENDED." and "Resources remaining within the account after closing will
be automatically deleted after 90 days. During this 90-day period, the resources won't be available".
moto sets SUSPENDED at once and keeps letting anyone assume the account's roles.

- `close(account_id)` (what the world of a CloseAccount event is): the account is PENDING_CLOSURE, and becomes
  SUSPENDED `CLOSURE_SECONDS` of virtual time later (read lazily, by DescribeAccount and ListAccounts);
- AssumeRole of a role in a PENDING_CLOSURE or SUSPENDED account -> `AccessDenied` (403): nothing in it can be
  reached any more.
"""

from __future__ import annotations

import re
import threading

from moto.organizations.models import organizations_backends

from mlplane_sandbox.clock import VirtualClock, clock
from mlplane_sandbox.rules import AwsError, Call, before

CLOSURE_SECONDS = 300.0  # "You need to wait a few minutes before the account is fully closed."
CLOSED = frozenset({"PENDING_CLOSURE", "SUSPENDED"})
_ROLE = re.compile(r"^arn:[\w-]+:iam::(\d{12}):role/")
_lock = threading.Lock()
_closing: dict[str, tuple[VirtualClock, float]] = {}  # account id -> (clock, when CloseAccount was called)


def reset() -> None:
    with _lock:
        _closing.clear()


def close(management_account: str, account_id: str) -> None:
    """CloseAccount was called for `account_id`: PENDING_CLOSURE now, SUSPENDED a few minutes later."""
    now = clock()
    with _lock:
        _closing[account_id] = (now, now.now())
    _set_state(management_account, account_id, "PENDING_CLOSURE")


def state_of(account_id: str) -> str | None:
    """The closure state the account is in now, or None if it was never closed."""
    with _lock:
        started = _closing.get(account_id)
    if started is None:
        return None
    when_clock, when = started
    return "SUSPENDED" if when_clock.now() - when >= CLOSURE_SECONDS else "PENDING_CLOSURE"


def _set_state(management_account: str, account_id: str, state: str) -> None:
    backend = organizations_backends[management_account]["aws"]
    for account in backend.accounts:
        if account.id == account_id:
            account.status = account.state = state


@before("organizations", "DescribeAccount")
@before("organizations", "ListAccounts")
def _closure_completes(call: Call) -> None:
    with _lock:
        closing = list(_closing)
    for account_id in closing:
        state = state_of(account_id)
        if state is not None:
            _set_state(call.account_id, account_id, state)


@before("sts", "AssumeRole")
def _no_role_in_a_closed_account(call: Call) -> None:
    arn = str(call.params.get("RoleArn", ""))
    match = _ROLE.match(arn)
    if match is not None and state_of(match.group(1)) in CLOSED:
        raise AwsError(
            "AccessDenied",
            f"User: {call.principal} is not authorized to perform: sts:AssumeRole on resource: {arn} "
            f"(account {match.group(1)} is closed)",
            403,
        )
