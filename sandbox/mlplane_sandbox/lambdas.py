"""Lambda, in-process: the real `functions/<step>/app.py` handlers with the environment template.yaml gives.

moto's ASL interpreter invokes `arn:aws:states:::lambda:invoke` tasks through
`lambda_eval_utils._invoke_lambda_function`; the sandbox serves those invocations here, without Docker and
without moto's echoing Lambda. A handler's exception becomes a FunctionError payload with its class name as
`errorType`, as the Python runtime reports it; a `--crash` becomes `Sandbox.Timedout`; a `--redeliver`
reports `Lambda.ServiceException` after the handler succeeded, as when Lambda's answer is lost.

Each invocation has its template.yaml `Timeout` of virtual time (`clock.budget`): the context's
`get_remaining_time_in_millis` counts down as the handler's own waits advance the clock, and a handler that
waits past it dies there with `Sandbox.Timedout`, as Lambda reports a timeout. `--oom STATE[@N]` kills the
Nth invocation of the state's Lambda as it returns, as the runtime does when the function runs out of
memory: Step Functions sees `Lambda.Unknown` (Step Functions developer guide, "Handle Lambda service
exceptions": "Unhandled errors in Lambda are reported as Lambda.Unknown ... These include out-of-memory
errors and function timeouts").
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
from unittest import mock

from aws_lambda_powertools.metrics.provider import cold_start
from botocore.exceptions import ClientError

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import faults, recording


class MetricsOutput:
    """Where the handlers' Powertools metrics go in the sandbox: collected here, never on the CLI's output.

    Powertools prints each EMF document (`{"_aws": ...}`) to stdout, which Lambda ships to CloudWatch Logs;
    its ColdStart `single_metric` prints even with POWERTOOLS_METRICS_DISABLED. In the sandbox stdout is the
    CLI's: `print` in Powertools' metrics modules is pointed here instead (module globals, so handlers in
    Parallel branches' threads are covered without swapping sys.stdout).
    """

    _MODULES = (
        "aws_lambda_powertools.metrics.base",
        "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch",
    )

    def __init__(self) -> None:
        self.documents: list[Any] = []
        self._lock = threading.Lock()
        self._patches = [mock.patch(f"{module}.print", self._print, create=True) for module in self._MODULES]

    def _print(self, *values: object, **_: object) -> None:
        text = " ".join(str(v) for v in values)
        try:
            document = json.loads(text)
        except ValueError:
            document = text
        if document is not None:  # single_metric prints `null` when the metric could not be made
            with self._lock:
                self.documents.append(document)

    def start(self) -> None:
        for patch in self._patches:
            patch.start()

    def stop(self) -> None:
        for patch in reversed(self._patches):
            patch.stop()


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
    timeout_seconds: int = 900
    budget: clock_module.Budget | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Lambda's countdown to the timeout, on the sandbox's virtual clock."""
        if self.budget is None:
            return self.timeout_seconds * 1000
        return int(self.budget.remaining() * 1000)


@dataclass
class Invocation:
    function: str
    state: str
    ok: bool
    error: str | None


class Dispatcher:
    """Serves lambda:Invoke for the sandbox's functions."""

    def __init__(
        self,
        functions: dict[str, Function],
        redeliver: dict[str, set[int]],
        out_of_memory: dict[str, set[int]] | None = None,
    ) -> None:
        self.by_arn = {f.arn: f for f in functions.values()}
        self.by_name = {f.name: f for f in functions.values()}
        self.redeliver = redeliver  # logical id of the state's function -> which successes to drop
        self.out_of_memory = out_of_memory or {}  # logical id -> which invocations run out of memory
        self._successes: dict[str, int] = {}
        self._invocations: dict[str, int] = {}
        self._fired: set[tuple[str, str, int]] = set()  # (flag, function, nth) that took effect
        self._warm: set[str] = set()  # functions invoked since the deployment
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
        self._first_in_its_environment(function)
        dies_of_oom = self._counted(function.logical_id, self.out_of_memory, self._invocations)
        with recording.actor(function.logical_id), clock_module.budget(function.timeout) as budget:
            context = LambdaContext(
                function.name, function.arn, function.memory, timeout_seconds=function.timeout, budget=budget
            )
            try:
                result = function.entry()(payload, context)
            except clock_module.OutOfTime:
                return False, self._timed_out(function, context, "its own waits")
            except faults.LambdaCrash as crash:
                return False, self._timed_out(function, context, f"sandbox --crash after {crash}")
            except Exception as err:  # the runtime reports any exception as the function's error
                return False, {"errorType": type(err).__name__, "errorMessage": str(err), "stackTrace": []}
        if dies_of_oom:
            return False, {
                "errorType": "Lambda.Unknown",
                "errorMessage": "The cause could not be determined because Lambda did not return an error type. "
                f"Returned payload: RequestId: {context.aws_request_id} Error: Runtime exited with error: "
                f"signal: killed (sandbox --oom: out of memory, {function.memory} MB)",
            }
        return True, json.loads(json.dumps(result))

    def _first_in_its_environment(self, function: Function) -> None:
        """Each function of a new deployment starts cold, as each Lambda function has its own environments;
        Powertools keeps one process-wide flag, so the sandbox raises it again before a function's first call
        (concurrent first calls in Parallel branches may share one ColdStart: a sandbox approximation)."""
        with self._lock:
            first = function.logical_id not in self._warm
            self._warm.add(function.logical_id)
        if first:
            cold_start.is_cold_start = True

    @staticmethod
    def _timed_out(function: Function, context: LambdaContext, why: str) -> dict[str, str]:
        return {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {context.aws_request_id} Error: Task timed out after "
            f"{function.timeout}.00 seconds ({why})",
        }

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
        return self._counted(logical_id, self.redeliver, self._successes)

    def _counted(self, logical_id: str, targets: dict[str, set[int]], counts: dict[str, int]) -> bool:
        """Count one more event of the function; True if it is one of the targeted ones."""
        wanted = targets.get(logical_id)
        if not wanted:
            return False
        with self._lock:
            counts[logical_id] = counts.get(logical_id, 0) + 1
            nth = counts[logical_id]
            if nth not in wanted:
                return False
            self._fired.add(("--oom" if targets is self.out_of_memory else "--redeliver", logical_id, nth))
            return True

    def unfired(self) -> list[str]:
        """The `--redeliver`/`--oom` options whose state never ran that many times."""
        with self._lock:
            return [
                f"{flag} {logical_id.removesuffix('Function')}@{nth}"
                for flag, targets in (("--redeliver", self.redeliver), ("--oom", self.out_of_memory))
                for logical_id, wanted in targets.items()
                for nth in sorted(wanted)
                if (flag, logical_id, nth) not in self._fired
            ]


def install(dispatcher: Dispatcher) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    lambda_eval_utils._invoke_lambda_function = dispatcher.serve
