"""Process-wide caches for work moto repeats on every request, with the same answer each time.

moto's `BaseResponse.call_action` lists its response class's methods with `inspect.getmembers` on every call
(about 1 ms: 6% of a READY run's CPU). The classes are module-level and nothing patches them, so the list is a
function of the class: cached here per class. No state of a run is cached (that stays per Sandbox).
"""

from __future__ import annotations

import functools
import threading

import moto.core.responses

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Idempotent."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _lock:
        if _installed:
            return
        module = moto.core.responses
        module.method_names_from_class = functools.cache(module.method_names_from_class)  # type: ignore[attr-defined]
        _installed = True
