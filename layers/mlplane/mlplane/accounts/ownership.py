"""Who owns an account's status: the execution the status names, as Step Functions reports it (REQUIREMENTS C8).

PROVISIONING, ROLLING_BACK and DEPROVISIONING mean "a run is working on the account". Such a status blocks
other runs only while the execution that wrote it is still running: one that ended (failed at the end of its
retries, timed out, aborted, crashed after the last write) will never finish the job, so the next run or
deprovision takes over and finishes it.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.config import Settings
from mlplane.errors import error_code, translate
from mlplane.ledger import AccountStatus, Status

# DescribeExecution's `status` values that mean the execution may still write (botocore's stepfunctions
# model: RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE).
_ALIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


def execution_arn(current: AccountStatus, settings: Settings) -> str | None:
    """The ARN of the execution that wrote `current` (DEPROVISIONING: the deprovision workflow's; else provision's)."""
    machine = (
        settings.deprovision_state_machine_arn
        if current.status == Status.DEPROVISIONING
        else settings.provision_state_machine_arn
    )
    if not machine or ":stateMachine:" not in machine:
        return None
    return f"{machine.replace(':stateMachine:', ':execution:')}:{current.execution}"


def owner_running(current: AccountStatus, settings: Settings) -> bool:
    """Whether the execution that wrote `current` may still be running.

    An owner Step Functions does not know (or no state machine ARN configured) counts as running: mlplane never
    starts a second run on an account it cannot show to be free. (Step Functions keeps closed executions for
    90 days; the status is written only by its own execution, so an unknown owner is rare and named in the
    refusal.)
    """
    arn = execution_arn(current, settings)
    if arn is None:
        return True
    sfn = aws.client(aws.hub_session(settings.aws_region), "stepfunctions")
    try:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
    except ClientError as err:
        if error_code(err) == "ExecutionDoesNotExist":
            return True
        raise translate(err, f"states:DescribeExecution {arn}") from err
    return status in _ALIVE
