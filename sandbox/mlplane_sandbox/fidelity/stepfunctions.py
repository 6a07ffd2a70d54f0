"""Step Functions error semantics as AWS has them, where moto 5.2.5's ASL interpreter differs.

Step Functions developer guide, "Handling errors in Step Functions workflows" (error names):
- `States.ALL` "is a wildcard that matches any known error name", but "can't catch the
  States.DataLimitExceeded terminal error or Runtime error types";
- `States.Runtime`: "An execution failed due to some exception that it couldn't process ... A States.Runtime
  error isn't retriable, and will always cause the execution to fail. A retry or catch on States.ALL won't
  catch States.Runtime errors.";
- `States.DataLimitExceeded` is reported when a connector's output, a state's output, or a state's input
  after Parameters processing is larger than the payload quota (256 KB, "Step Functions service quotas").

moto's `ErrorEqualsDecl` lets `States.ALL` match every error, so a path mistake or an oversized payload is
caught by the ASL's `Catch` and ends in a rollback (or even SUCCEEDED) instead of failing the execution.
`install` makes the matching strict: `States.Runtime` matches nothing, `States.DataLimitExceeded` only a
clause that names it; and a Parallel whose branch failed with a `States.*` error fails with that error
(moto crashed on it). moto already checks a task's result and a state's output against 256 KB; `install`
adds the check on a task's input after Parameters processing.

(LocalStack's snapshot tests, recorded against AWS in March 2024, show a Lambda task's oversized result
caught by `States.ALL`; the guide says it is not. The sandbox follows the guide, the stricter of the two:
a payload near the limit is a bug either way, and the sandbox makes it fail loudly.)
"""

from __future__ import annotations

import threading
from typing import Any

RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"

_lock = threading.Lock()
_installed = False


def matches(error: str, error_equals: list[str]) -> bool:
    """Whether a Retry/Catch clause with `error_equals` handles an error named `error`, as AWS decides."""
    if error == RUNTIME:
        return False  # never retried, never caught: the execution fails
    if error == DATA_LIMIT_EXCEEDED:
        return error in error_equals  # terminal: only a clause naming it
    if ALL in error_equals:
        return True
    if TASK_FAILED in error_equals and not error.startswith("States."):
        return True
    return error in error_equals


def install() -> None:
    """Patch moto's ASL interpreter (idempotent)."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _lock:
        if _installed:
            return
        _patch_error_equals()
        _patch_branch_error_names()
        _patch_task_input_limit()
        _installed = True


def _patch_error_equals() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl

    def _eval_body(self: Any, env: Any) -> None:
        # moto's contract: pop the ErrorName the state failed with, push whether this clause matches it.
        error_name = env.stack.pop()
        names = [str(name.error_name) for name in self.error_names]
        env.stack.append(matches(str(error_name.error_name), names))

    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]


def _patch_branch_error_names() -> None:
    """A Parallel fails with its failed branch's error name, `States.*` ones included.

    moto wraps the name in a CustomErrorName, which refuses names starting with `States.`: a branch failing
    with States.DataLimitExceeded (or States.TaskFailed) crashed the interpreter into a States.Runtime.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    def error_name(error_name: str | None) -> Any:
        if error_name is not None and error_name.startswith("States."):
            try:
                return StatesErrorName.from_name(error_name)
            except ValueError:  # a States.* name the lexer does not know
                return StatesErrorName.from_name(RUNTIME)
        return CustomErrorName(error_name=error_name)

    branches_decl.CustomErrorName = error_name  # type: ignore[attr-defined,assignment]


def _patch_task_input_limit() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    original = StateTaskService._before_eval_execution

    def _before_eval_execution(
        self: Any, env: Any, resource_runtime_part: Any, raw_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        # "The input of a state is larger than the payload size quota after Parameters processing."
        self._verify_size_quota(env=env, value=raw_parameters)
        original(self, env, resource_runtime_part, raw_parameters, state_credentials)

    StateTaskService._before_eval_execution = _before_eval_execution  # type: ignore[method-assign]
