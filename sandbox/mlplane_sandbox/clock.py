"""The sandbox's clock: Wait states, Retry intervals, botocore back-off and waiters advance it instead
of sleeping, and things that take time in AWS (NAT gateways, the vendor's EKS) move on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Listener = Callable[[float], None]


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
