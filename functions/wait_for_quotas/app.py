"""WaitForQuotas: one poll of the quota requests."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.quotas import apply as quotas
from mlplane.steps import PollInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = PollInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "WaitForQuotas", settings)
    return quotas.poll(member, settings, step.attempt, step.waited_seconds, step.wait_seconds).model_dump(mode="json")
