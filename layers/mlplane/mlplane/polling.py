"""Wait-loop timing: how long the workflow waits before the next poll, and when a loop gives up.

The quota and vendor waits back off (REQUIREMENTS Q3: a support case takes days and the AAC admin triggers
the vendor by hand; a poll every minute for five days would cost 21,600 state transitions): the interval
doubles after each poll up to a cap, and the last wait is cut so that the final poll falls exactly on the
timeout. Each full day of waiting is worth a reminder to the people who can end it. The deadline is counted
in the seconds the Wait states waited (carried in the execution's state), never in the handler's clock: the
sandbox compresses time.
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


REMINDER_EVERY_SECONDS = 86_400
"""A waiting account is notified again after each day of waiting (REQUIREMENTS Q3)."""


def next_wait(interval: int, attempt: int, waited: int, timeout: int) -> tuple[int, int]:
    """(seconds to wait before the next poll, seconds waited once that wait is over) after poll `attempt`."""
    delay = backoff_delay(interval, attempt, waited, timeout)
    return delay, waited + delay


def reminder_due(waited: int, last_wait: int) -> int:
    """The day of waiting (1, 2, ...) that a poll after `waited` seconds, `last_wait` of them since the previous
    poll, is the first to complete; 0 if it completes none. Each day boundary is crossed by exactly one poll."""
    day = waited // REMINDER_EVERY_SECONDS
    return day if day >= 1 and (waited - last_wait) // REMINDER_EVERY_SECONDS < day else 0
