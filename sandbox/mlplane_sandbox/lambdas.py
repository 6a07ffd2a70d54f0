"""Lambda, in-process: the real `functions/<step>/app.py` handlers with the environment template.yaml gives.

moto's ASL interpreter invokes `arn:aws:states:::lambda:invoke` tasks through
`lambda_eval_utils._invoke_lambda_function`; the sandbox serves those invocations here, without Docker and
without moto's echoing Lambda. A handler's exception becomes a FunctionError payload with its class name as
`errorType`, as the Python runtime reports it; a `--crash` becomes `Sandbox.Timedout`; a `--redeliver`
reports `Lambda.ServiceException` after the handler succeeded, as when Lambda's answer is lost.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from botocore.exceptions import ClientError

from mlplane_sandbox import faults, recording


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    role_arn: str
    timeout: int = 900
    memory: int = 256
    _module: ModuleType | None = None

    def entry(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._module is None:
            module_name, _, _ = self.handler.partition(".")
            path = self.code_dir / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(f"mlplane_fn_{self.code_dir.name}", path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(f"{self.logical_id}: no handler module at {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._module = module
        fn: Callable[[dict[str, Any], Any], Any] = getattr(self._module, self.handler.partition(".")[2])
        return fn


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class Invocation:
    function: str
    state: str
    ok: bool
    error: str | None


class Dispatcher:
    """Serves lambda:Invoke for the sandbox's functions."""

    def __init__(self, functions: dict[str, Function], redeliver: dict[str, set[int]]) -> None:
        self.by_arn = {f.arn: f for f in functions.values()}
        self.by_name = {f.name: f for f in functions.values()}
        self.redeliver = redeliver  # logical id of the state's function -> which successes to drop
        self._successes: dict[str, int] = {}
        self._dropped: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []

    def function(self, name_or_arn: str) -> Function:
        found = self.by_arn.get(name_or_arn) or self.by_name.get(name_or_arn.rsplit(":", maxsplit=1)[-1])
        if found is None:
            raise KeyError(f"no function {name_or_arn} in template.yaml")
        return found

    def invoke(self, function: Function, event: Any) -> tuple[bool, Any]:
        """Run the handler as Lambda would: JSON in, JSON out, errors as a FunctionError payload."""
        payload = json.loads(json.dumps(event))
        context = LambdaContext(function.name, function.arn, function.memory)
        with recording.actor(function.logical_id):
            try:
                result = function.entry()(payload, context)
            except faults.LambdaCrash as crash:
                return False, {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {context.aws_request_id} Error: Task timed out after "
                    f"{function.timeout}.00 seconds (sandbox --crash after {crash})",
                }
            except Exception as err:  # the runtime reports any exception as the function's error
                return False, {"errorType": type(err).__name__, "errorMessage": str(err), "stackTrace": []}
        return True, json.loads(json.dumps(result))

    def serve(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        """Replacement for moto's `_invoke_lambda_function`."""
        function = self.function(str(parameters["FunctionName"]))
        raw = parameters.get("Payload") or b"{}"
        event = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        ok, result = self.invoke(function, event)
        state = function.logical_id.removesuffix("Function")
        self.invocations.append(Invocation(function.logical_id, state, ok, None if ok else result.get("errorType")))
        if ok and self._drop_response(function.logical_id):
            raise ClientError(
                cast(
                    Any,
                    {
                        "Error": {"Code": "ServiceException", "Message": "sandbox --redeliver: the response was lost"},
                        "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": str(uuid.uuid4())},
                    },
                ),
                "Invoke",
            )
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": result}
        if not ok:
            response["FunctionError"] = "Unhandled"
        return response

    def _drop_response(self, logical_id: str) -> bool:
        wanted = self.redeliver.get(logical_id)
        if not wanted:
            return False
        with self._lock:
            self._successes[logical_id] = self._successes.get(logical_id, 0) + 1
            nth = self._successes[logical_id]
            if nth in wanted:
                self._dropped.add((logical_id, nth))
                return True
            return False

    def unfired(self) -> list[str]:
        """The `--redeliver` options whose state never succeeded that many times."""
        with self._lock:
            return [
                f"--redeliver {logical_id.removesuffix('Function')}@{nth}"
                for logical_id, wanted in self.redeliver.items()
                for nth in sorted(wanted)
                if (logical_id, nth) not in self._dropped
            ]


def install(dispatcher: Dispatcher) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    lambda_eval_utils._invoke_lambda_function = dispatcher.serve
