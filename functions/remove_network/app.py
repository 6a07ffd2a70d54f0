"""RemoveNetwork: remove the AAC network in dependency order (N1-N4)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.deadline import Deadline
from mlplane.member import member_for
from mlplane.network import undo as network
from mlplane.observability import logger, metrics
from mlplane.rollback.run import teardown
from mlplane.steps import StepInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "RemoveNetwork", settings, Deadline.of(context))
    return teardown(member, "network", network.HANDLERS).model_dump(mode="json")
