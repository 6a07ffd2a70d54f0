"""The running Lambda's deadline: a long wait must end before Lambda kills the step at its timeout.

A step that waits for AWS (NAT gateways `available` or `deleted`, a transit gateway attachment) can need
longer than the function's timeout (900 s): three NAT gateways deleted one after another wait up to 600 s
each. Killed by Lambda, the step would fail with `Sandbox.Timedout` halfway through a wait; instead a
bounded wait stops `MARGIN_SECONDS` before the deadline and raises TransientError ("not finished"), which
the workflow's Retry answers by running the (idempotent) step again: what is done is found done, what is
still deleting is waited for again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.exceptions import WaiterError
from botocore.waiter import Waiter

from mlplane.errors import TransientError

MARGIN_SECONDS = 60.0
"""What a step keeps for itself after its last wait: ledger writes, the next calls, its response."""


class Deadline(NamedTuple):  # not a frozen dataclass: ~0.5 ms less of every cold start (CPython 3.11)
    """How long the running invocation has left (the Lambda context's `get_remaining_time_in_millis`)."""

    remaining_ms: Callable[[], int] | None = None

    @classmethod
    def of(cls, context: Any) -> Deadline:
        """The deadline of a Lambda context (none for an object without `get_remaining_time_in_millis`)."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining if callable(remaining) else None)

    def seconds_left(self) -> float:
        """Seconds the step may still spend waiting (the margin kept back); infinite without a deadline."""
        if self.remaining_ms is None:
            return math.inf
        return self.remaining_ms() / 1000.0 - MARGIN_SECONDS


def bounded_wait(
    waiter: Waiter, deadline: Deadline, what: str, *, delay: int, max_attempts: int, **kwargs: Any
) -> None:
    """Run a botocore waiter for at most `max_attempts` polls `delay` seconds apart, and no longer than the
    deadline allows.

    Raises TransientError naming `what` when the deadline cut the wait short (the step is not finished;
    a retry resumes it), and the waiter's own WaiterError otherwise (a failure state, or `max_attempts`
    polls that all saw it unfinished).
    """
    left = deadline.seconds_left()
    fit = max_attempts if math.isinf(left) else int(left // delay) + 1  # n polls wait (n - 1) delays
    if left <= 0:
        raise TransientError(f"{what}: not finished before the Lambda timeout; the step resumes on retry")
    attempts = min(max_attempts, fit)
    try:
        waiter.wait(WaiterConfig={"Delay": delay, "MaxAttempts": attempts}, **kwargs)
    except WaiterError as err:
        if attempts < max_attempts and "Max attempts exceeded" in str(err):
            raise TransientError(f"{what}: not finished before the Lambda timeout; the step resumes on retry") from err
        raise
