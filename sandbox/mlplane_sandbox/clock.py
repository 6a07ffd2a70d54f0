"""The sandbox's clock: Wait states, Retry intervals, botocore back-off and waiters advance it instead
of sleeping, and things that take time in AWS (NAT gateways, the vendor's EKS) move on it.

A Lambda invocation runs within a `budget` of its configured timeout: the virtual seconds its own thread
sleeps are charged to it (concurrent branches each have their own, as each Lambda has its own wall clock),
its context's `get_remaining_time_in_millis` counts them down, and a sleep past the timeout raises
`OutOfTime` at the timeout, which no handler code can catch: the invocation dies as Lambda kills it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Listener = Callable[[float], None]


class OutOfTime(BaseException):
    """The running Lambda reached its configured timeout."""


@dataclass
class Budget:
    """An invocation's timeout and the virtual seconds its thread has slept so far."""

    limit: float
    used: float = 0.0

    def remaining(self) -> float:
        return max(0.0, self.limit - self.used)


_local = threading.local()


def current_budget() -> Budget | None:
    """The budget of the invocation running on this thread, if any."""
    found: Budget | None = getattr(_local, "budget", None)
    return found


@contextmanager
def budget(seconds: float) -> Iterator[Budget]:
    """Run the body as one Lambda invocation with `seconds` of (virtual) time."""
    previous = current_budget()
    _local.budget = Budget(float(seconds))
    try:
        yield _local.budget
    finally:
        _local.budget = previous


class VirtualClock:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._now = time.time()
        self._listeners: list[Listener] = []
        self.slept = 0.0  # virtual seconds that would have been slept for real

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and let whatever changes with time (NAT gateways, the vendor) catch up."""
        if seconds <= 0:
            return
        with self._lock:
            self._now += seconds
            self.slept += seconds
            now = self._now
            listeners = list(self._listeners)
        for listener in listeners:
            listener(now)

    def sleep(self, seconds: float) -> None:
        """What `time.sleep` does in the sandbox: advance, charged to the running invocation's budget."""
        running = current_budget()
        if running is None or seconds <= 0:
            self.advance(seconds)
            return
        left = running.remaining()
        if seconds > left:
            self.advance(left)
            running.used = running.limit
            raise OutOfTime(f"timed out after {running.limit:g} s")
        running.used += seconds
        self.advance(seconds)

    def on_advance(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)


_clock = VirtualClock()


def clock() -> VirtualClock:
    return _clock


def reset() -> VirtualClock:
    global _clock  # noqa: PLW0603 - one clock per sandbox run, swapped between runs
    _clock = VirtualClock()
    return _clock
