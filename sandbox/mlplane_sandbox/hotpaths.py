"""Process-wide caches for work moto repeats on every request, with the same answer each time.

moto's `BaseResponse.call_action` lists its response class's methods with `inspect.getmembers` on every call
(about 1 ms: 6% of a READY run's CPU). The classes are module-level and nothing patches them, so the list is a
function of the class: cached here per class. moto's EKS validates every role ARN against
`boto3.Session().get_available_partitions()`: a new session that reads botocore's endpoints.json (~0.25 s) for
each CreateCluster and CreateNodegroup; the partitions are botocore's data, the same for the whole process.
moto's Step Functions parses every JSONPath (InputPath, ResultPath, each `.$` of a Parameters block) with
jsonpath-ng on every state it evaluates, and each parse builds a new PLY parser (its tables re-read, hundreds
of regular expressions compiled, which also evicts botocore's endpoint-rule patterns from `re`'s cache): about
15% of a READY run. A parsed JSONPath is a tree that `find`/`update_or_create` only read, a function of its
text: cached here per text (a path that does not parse raises each time, as before).
No state of a run is cached (that stays per Sandbox).
"""

from __future__ import annotations

import functools
import threading

import boto3
import jsonpath_ng
import jsonpath_ng.ext
import moto.core.responses
import moto.eks.utils
import moto.stepfunctions.parser.asl.component.common.path.result_path as asl_result_path
import moto.stepfunctions.parser.asl.utils.json_path as asl_json_path

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
        # the same functions moto's modules imported by name, cached (extended syntax for paths, plain for ResultPath)
        asl_json_path.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
        asl_result_path.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.parse)  # type: ignore[attr-defined]
        _installed = True
