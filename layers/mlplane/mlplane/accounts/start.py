"""Starting the provision workflow: deterministic names make duplicate deliveries start one execution."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.accounts.events import ControlTowerEvent, ManualStart, parse_start
from mlplane.config import Settings
from mlplane.errors import ConfigError, InputRejected, error_code, translate
from mlplane.observability import logger

MAX_INPUT_BYTES = 262_144
"""StartExecution's limit on an execution's input (256 KiB, UTF-8), the same as EventBridge's on an event."""


def execution_name(start: ControlTowerEvent | ManualStart, *, now: datetime | None = None) -> str:
    """`ct-<account>-<event digest>` for an event (same event, same name); `op-<account>-<time>` by hand."""
    if isinstance(start, ControlTowerEvent):
        digest = hashlib.sha256(f"{start.id}|{start.detail.eventName}".encode()).hexdigest()[:16]
        return f"ct-{start.account_id}-{digest}"
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"op-{start.account_id}-{moment}"


def start_provisioning(raw: Any, settings: Settings, state_machine_arn: str) -> dict[str, Any]:
    """StartExecution for an event or manual input; a duplicate delivery returns the first execution."""
    start = parse_start(raw)
    return start_execution(
        raw,
        account_id=start.account_id,
        name=execution_name(start),
        settings=settings,
        state_machine_arn=state_machine_arn,
    )


def start_execution(
    raw: Any, *, account_id: str, name: str, settings: Settings, state_machine_arn: str
) -> dict[str, Any]:
    """StartExecution with a deterministic name: EventBridge delivers at least once, and a Standard
    workflow refuses a second execution of the same name (ExecutionAlreadyExists once the first closed)."""
    if not state_machine_arn:
        raise ConfigError("the state machine ARN is not configured")
    # Step Functions measures the input in UTF-8 bytes: send it unescaped, as measured (an "é" is 2 bytes, not
    # the 6 of "\u00e9").
    payload = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    size = len(payload.encode())
    if size > MAX_INPUT_BYTES:  # Step Functions (and EventBridge) refuse it; say so before calling
        raise InputRejected(f"input for {account_id} is {size} bytes, over Step Functions' {MAX_INPUT_BYTES}")
    sfn = aws.client(aws.hub_session(settings.aws_region), "stepfunctions")
    try:
        arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)["executionArn"]
        started = True
    except ClientError as err:
        if error_code(err) != "ExecutionAlreadyExists":
            raise translate(err, f"states:StartExecution {name}") from err
        arn = f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        started = False
    logger.info("execution start", account_id=account_id, execution=name, started=started)
    return {"account_id": account_id, "execution": name, "execution_arn": arn, "started": started}
