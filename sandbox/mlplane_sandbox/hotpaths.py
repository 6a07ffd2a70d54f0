"""Process-wide caches for work moto repeats on every request, with the same answer each time.

moto's `BaseResponse.call_action` lists its response class's methods with `inspect.getmembers` on every call
(about 1 ms: 6% of a READY run's CPU). The classes are module-level and nothing patches them, so the list is a
function of the class: cached here per class. moto's EKS validates every role ARN against
`boto3.Session().get_available_partitions()`: a new session that reads botocore's endpoints.json (~0.25 s) for
each CreateCluster and CreateNodegroup; the partitions are botocore's data, the same for the whole process.
No state of a run is cached (that stays per Sandbox).
"""

from __future__ import annotations

import functools
import threading

import boto3
import moto.core.responses
import moto.eks.utils

_lock = threading.Lock()
_installed = False


@functools.cache
def _available_partitions() -> tuple[str, ...]:
    return tuple(boto3.Session().get_available_partitions())


class _PartitionsSession:
    """What moto.eks.utils asks of its `boto3.Session()`: the partitions, read once."""

    def get_available_partitions(self) -> list[str]:
        return list(_available_partitions())


def install() -> None:
    """Idempotent."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _lock:
        if _installed:
            return
        module = moto.core.responses
        module.method_names_from_class = functools.cache(module.method_names_from_class)  # type: ignore[attr-defined]
        moto.eks.utils.Session = _PartitionsSession  # type: ignore[assignment,attr-defined]
        _installed = True
