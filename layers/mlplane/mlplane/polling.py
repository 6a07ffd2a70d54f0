"""Wait-loop timing: how long the workflow waits before the next poll, and when a loop gives up.

The quota wait backs off (REQUIREMENTS Q3: a support case takes days, a poll every minute for five days
would cost 21,600 state transitions): the interval doubles after each poll up to a cap, and the last wait
is cut so that the final poll falls exactly on the timeout. The deadline is counted in the seconds the
Wait states waited (carried in the execution's state), never in the handler's clock: the sandbox
compresses time.
"""

from __future__ import annotations

BACKOFF_CAP_SECONDS = 900
"""The longest a backed-off wait loop waits between two polls (15 minutes)."""


def backoff_delay(interval: int, attempt: int, waited: int, timeout: int, cap: int = BACKOFF_CAP_SECONDS) -> int:
    """Seconds to wait after poll `attempt` (0-based) when `waited` seconds were waited before it.

    `interval` doubled per poll (`interval`, `2 * interval`, ...), at most `max(cap, interval)`, and never
    beyond the timeout: the poll after the last wait happens when `waited` reaches `timeout`.
    """
    longest = max(cap, interval)
    delay: int = min(interval << min(attempt, 32), longest)
    left = timeout - waited
    return max(1, min(delay, left)) if left > 0 else delay


def timed_out(waited: int, timeout: int) -> bool:
    """A poll after `waited` seconds of waiting is the last one once that waiting reached the timeout."""
    return waited >= timeout
