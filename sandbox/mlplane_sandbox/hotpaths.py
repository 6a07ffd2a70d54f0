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
moto's response serializer asks, for each member of each object it answers with, which attribute names to try
(`AttributePicker.get_possible_keys`: four alias providers made anew per member): a function of the picker, the
object's class-level `Meta`, the member's name and its botocore shape (shapes are cached by botocore and moto,
and each member shape has the one parent moto sets): cached per those (about 7% of a READY run).
Signing: botocore computes a SigV4 signature (canonical request, payload hash, five HMACs) for every request,
and nothing in the sandbox checks it (moto verifies no signature; the interceptor reads the access key and the
credential scope): in-process requests carry the same Authorization header with the signature left as zeros
(about 6%). Presigned URLs and the SDKs of other processes (`mlplane local serve`) sign as always.
Clients: every Lambda invocation of a fresh sandbox makes its boto3 clients anew (the sandbox forgets the
sessions between runs: their credentials belong to the run's STS), and botocore builds each client's class from
the service model each time (a method per operation, ~700 for EC2: 4% of a READY run). The class is a function
of the service's model data and of the `creating-client-class` handlers the session's emitter holds (all of
them module-level functions of botocore and boto3): cached per those. Each client keeps its own instance state
(credentials, endpoint, config, event handlers). Each client's copy of the session's event aliaser starts
with an empty cache of aliased event names and works each one out again (3% of a READY run): with botocore's
own aliases, the aliased name is a function of the name, so those aliasers share one cache.
No state of a run is cached (that stays per Sandbox).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3
import botocore.auth
import botocore.client
import botocore.exceptions
import botocore.hooks
import jsonpath_ng
import jsonpath_ng.ext
import moto.core.responses
import moto.core.serialize
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


_possible_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}
_HEADER_SIGNERS = (botocore.auth.SigV4Auth, botocore.auth.S3SigV4Auth)
UNCHECKED_SIGNATURE = "0" * 64
_sign = botocore.auth.SigV4Auth.add_auth


def _cached_possible_keys(
    original: Callable[[Any, Any], Iterable[str]],
) -> Callable[[Any, Any], tuple[str, ...]]:
    def get_possible_keys(self: Any, context: Any) -> tuple[str, ...]:
        key = (type(self), tuple(self.alias_providers), getattr(context.obj, "Meta", None), context.key, context.shape)
        found = _possible_keys.get(key)
        if found is None:
            found = _possible_keys[key] = tuple(original(self, context))
        return found

    return get_possible_keys


_client_classes: dict[tuple[Any, ...], tuple[Any, type]] = {}
_aliased_names: dict[str, str] = {}  # event name -> its name under botocore's EVENT_ALIASES
_aliaser_init = botocore.hooks.EventAliaser.__init__


def _shared_alias_cache(self: Any, event_emitter: Any, event_aliases: Any = None) -> None:
    _aliaser_init(self, event_emitter, event_aliases)
    if self._event_aliases == botocore.hooks.EVENT_ALIASES:
        self._alias_name_cache = _aliased_names


def _cached_client_class(original: Callable[[Any, str, Any], type]) -> Callable[[Any, str, Any], type]:
    def create_client_class(self: Any, service_name: str, service_model: Any) -> type:
        description = service_model._service_description  # the loader's cached model data (one per service)
        event = f"creating-client-class.{service_model.service_id.hyphenize()}"
        emitter = getattr(self._event_emitter, "_emitter", self._event_emitter)
        key = (service_name, id(description), tuple(emitter._handlers.prefix_search(event)))
        found = _client_classes.get(key)
        if found is None or found[0] is not description:
            found = _client_classes[key] = (description, original(self, service_name, service_model))
        return found[1]

    return create_client_class


def _add_auth(self: botocore.auth.SigV4Auth, request: Any) -> None:
    """SigV4Auth.add_auth with the headers it sets (date, token, payload hash for S3, Authorization with the
    credential scope) and no signature computed; other signers (query strings, S3 Express) as botocore does."""
    if type(self) not in _HEADER_SIGNERS:
        _sign(self, request)
        return
    if self.credentials is None:
        raise botocore.exceptions.NoCredentialsError()
    # botocore's own steps (the stubs do not list them)
    now = botocore.auth.get_current_datetime()  # type: ignore[attr-defined]
    request.context["timestamp"] = now.strftime(botocore.auth.SIGV4_TIMESTAMP)
    self._modify_request_before_signing(request)  # type: ignore[attr-defined]
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, SignedHeaders=host;x-amz-date,"
        f" Signature={UNCHECKED_SIGNATURE}"
    )


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
        for picker in (moto.core.serialize.AttributePicker, moto.core.serialize.XFormedAttributePicker):
            picker.get_possible_keys = _cached_possible_keys(picker.get_possible_keys)  # type: ignore[method-assign,assignment]
        botocore.auth.SigV4Auth.add_auth = _add_auth  # type: ignore[method-assign]
        botocore.hooks.EventAliaser.__init__ = _shared_alias_cache  # type: ignore[method-assign]
        creator = botocore.client.ClientCreator
        creator._create_client_class = _cached_client_class(creator._create_client_class)  # type: ignore[attr-defined]
        _installed = True
