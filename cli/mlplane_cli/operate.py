"""Operating a deployed stack: start provisioning or deprovisioning by hand, read an account's status.

The stack's outputs name the state machines and the ledger table, so an operator needs only the stack
name (default `mlplane`) and credentials for the hub account.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.accounts.retire import start_deprovisioning
from mlplane.accounts.start import start_execution, start_provisioning
from mlplane.config import Settings, settings_from_env
from mlplane.errors import ConfigError, Conflict, error_code, translate
from mlplane.ledger import Ledger, ResourceState, Status


def stack_outputs(stack: str, region: str) -> dict[str, str]:
    cloudformation = aws.client(aws.hub_session(region), "cloudformation")
    try:
        answer = cloudformation.describe_stacks(StackName=stack)
    except ClientError as err:
        raise translate(err, f"cloudformation:DescribeStacks {stack}") from err
    return {o["OutputKey"]: o["OutputValue"] for o in answer["Stacks"][0].get("Outputs", [])}


def stack_settings(stack: str, region: str) -> dict[str, Any]:
    """The settings the stack's functions run with (ValidateAccount's environment), for `mlplane plan`."""
    session = aws.hub_session(region)
    try:
        function = aws.client(session, "cloudformation").describe_stack_resource(
            StackName=stack, LogicalResourceId="ValidateAccountFunction"
        )["StackResourceDetail"]["PhysicalResourceId"]
        env = aws.client(session, "lambda").get_function_configuration(FunctionName=function)
    except ClientError as err:
        raise translate(err, f"the settings of stack {stack}") from err
    variables: dict[str, str] = env.get("Environment", {}).get("Variables", {})
    return settings_from_env(variables).model_dump()


def output(outputs: dict[str, str], key: str, stack: str) -> str:
    if key not in outputs:
        raise ConfigError(f"stack {stack} has no output {key}; is it mlplane's stack?")
    return outputs[key]


def provision(account_id: str, requested_by: str, reason: str, *, stack: str, region: str) -> dict[str, Any]:
    arn = output(stack_outputs(stack, region), "ProvisionStateMachineArn", stack)
    document = {"account_id": account_id, "requested_by": requested_by, "reason": reason}
    return start_provisioning(document, Settings(aws_region=region), arn)


def resume(account_id: str, requested_by: str, reason: str, *, stack: str, region: str) -> dict[str, Any]:
    """Start provisioning a ROLLBACK_HELD account again: it goes back to the waits and creates nothing.

    Only for a held account (after the data plane was retried in AAC); anything else is refused, so that
    `resume` never starts a fresh provisioning by mistake.
    """
    outputs = stack_outputs(stack, region)
    ledger = Ledger(aws.client(aws.hub_session(region), "dynamodb"), output(outputs, "LedgerTableName", stack))
    current = ledger.status(account_id)
    if current is None or current.status != Status.ROLLBACK_HELD:
        state = current.status.value if current else "unknown to mlplane"
        raise Conflict(f"account {account_id} is {state}, not ROLLBACK_HELD: nothing to resume")
    arn = output(outputs, "ProvisionStateMachineArn", stack)
    document = {
        "account_id": account_id,
        "requested_by": requested_by,
        "reason": reason or "resume after ROLLBACK_HELD",
    }
    return start_provisioning(document, Settings(aws_region=region), arn)


def reconcile(account_id: str, requested_by: str, reason: str, *, stack: str, region: str) -> dict[str, Any]:
    """Start the provision workflow in reconcile mode: a READY account converged to the plan (D2); ValidateAccount
    refuses any other status."""
    arn = output(stack_outputs(stack, region), "ProvisionStateMachineArn", stack)
    document = {"account_id": account_id, "requested_by": requested_by, "reason": reason, "action": "reconcile"}
    return start_provisioning(document, Settings(aws_region=region), arn)


def adopt(account_id: str, requested_by: str, reason: str, *, stack: str, region: str) -> dict[str, Any]:
    """Start the provision workflow in adopt mode: an account prepared by hand per seed 000 is taken into the
    ledger (D3), creating only what is missing; ValidateAccount refuses an account mlplane already holds."""
    arn = output(stack_outputs(stack, region), "ProvisionStateMachineArn", stack)
    document = {"account_id": account_id, "requested_by": requested_by, "reason": reason, "action": "adopt"}
    return start_provisioning(document, Settings(aws_region=region), arn)


def reconcile_fleet(requested_by: str, *, stack: str, region: str) -> dict[str, Any]:
    """Start ReconcileFleetStateMachine: every READY account, at most ReconcileConcurrency at once (D2)."""
    arn = output(stack_outputs(stack, region), "ReconcileFleetStateMachineArn", stack)
    name = f"fleet-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    document = {"requested_by": requested_by}
    return start_execution(
        document, account_id="all", name=name, settings=Settings(aws_region=region), state_machine_arn=arn
    )


def deprovision(account_id: str, requested_by: str, reason: str, *, stack: str, region: str) -> dict[str, Any]:
    arn = output(stack_outputs(stack, region), "DeprovisionStateMachineArn", stack)
    document = {"action": "deprovision", "account_id": account_id, "requested_by": requested_by, "reason": reason}
    return start_deprovisioning(document, Settings(aws_region=region), arn)


def status(account_id: str, *, stack: str, region: str, table: str | None = None) -> dict[str, Any]:
    name = table or output(stack_outputs(stack, region), "LedgerTableName", stack)
    ledger = Ledger(aws.client(aws.hub_session(region), "dynamodb"), name)
    current = ledger.status(account_id)
    return {
        "account_id": account_id,
        "status": current.model_dump(mode="json") if current else None,
        "resources": [
            {"type": r.type, "key": r.key, "id": r.resource_id, "state": r.state.value, "step": r.step}
            for r in ledger.resources(account_id, live_only=False)
        ],
    }


def accounts(
    *, stack: str, region: str, table: str | None = None, status: str | None = None, ou: str | None = None
) -> list[dict[str, Any]]:
    """Every account in the ledger: status, owning execution, since when, last error, OU, deferred and held."""
    name = table or output(stack_outputs(stack, region), "LedgerTableName", stack)
    listed = []
    for entry in Ledger(aws.client(aws.hub_session(region), "dynamodb"), name).accounts():
        current = entry.status
        if (status and current.status != status) or (ou and entry.ou != ou):
            continue
        # Held: a ROLLBACK_HELD account keeps everything mlplane made, for the vendor (REQUIREMENTS C7).
        held = current.status == Status.ROLLBACK_HELD
        listed.append(
            {
                "account_id": current.account_id,
                "status": current.status.value,
                "execution": current.execution,
                "since": current.updated_at,
                "error": current.error,
                "ou": entry.ou,
                "deferred": [
                    {"type": r.type, "id": r.resource_id or r.key, "reason": str(r.data.get("deferred", ""))}
                    for r in entry.resources
                    if r.state == ResourceState.DEFERRED
                ],
                "held": [
                    {"type": r.type, "id": r.resource_id or r.key}
                    for r in entry.resources
                    if held and r.state in (ResourceState.INTENT, ResourceState.CREATED)
                ],
            }
        )
    return listed


FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def execution_arn(execution: str, *, stack: str, region: str) -> str:
    """An execution ARN as given, or the ARN of the execution of that name in either of the stack's workflows."""
    if execution.startswith("arn:"):
        return execution
    outputs = stack_outputs(stack, region)
    sfn = aws.client(aws.hub_session(region), "stepfunctions")
    for key in ("ProvisionStateMachineArn", "DeprovisionStateMachineArn"):
        machine = output(outputs, key, stack)
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{execution}"
        try:
            sfn.describe_execution(executionArn=arn)
        except ClientError as err:
            if error_code(err) == "ExecutionDoesNotExist":
                continue
            raise translate(err, f"states:DescribeExecution {arn}") from err
        return arn
    raise Conflict(f"no execution {execution!r} in the workflows of stack {stack}")


def follow(
    arn: str,
    *,
    region: str,
    on_progress: Callable[[dict[str, Any], dict[str, Any], list[dict[str, Any]]], None],
    sleep: Callable[[float], None] = time.sleep,
    every: float = 5.0,
) -> dict[str, Any]:
    """Poll the execution (DescribeExecution, its whole history) until it has finished, 1, 2 and 4 seconds apart,
    then every `every` seconds: an execution that ends in a second or two (a refusal, a re-run with nothing to do)
    is reported at once, a long one costs one poll per `every`. `on_progress(description, definition, history)`
    after each poll. Returns the final description."""
    sfn = aws.client(aws.hub_session(region), "stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=arn)
        machine = sfn.describe_state_machine(stateMachineArn=described["stateMachineArn"])
    except ClientError as err:
        raise translate(err, f"states:DescribeExecution {arn}") from err
    definition = json.loads(machine["definition"])
    delay = 1.0
    while True:
        try:
            described = sfn.describe_execution(executionArn=arn)
            history = [
                event
                for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                for event in page["events"]
            ]
        except ClientError as err:
            raise translate(err, f"states:GetExecutionHistory {arn}") from err
        on_progress(described, definition, history)
        if described["status"] in FINISHED:
            return dict(described)
        sleep(min(delay, every))
        delay *= 2
