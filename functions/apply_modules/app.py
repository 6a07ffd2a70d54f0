"""ApplyModules: the optional modules ValidateAccount enabled for the account (`mlplane.modules`)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane import modules
from mlplane.config import get_settings
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.steps import ApplyModulesInput, StepOutput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = ApplyModulesInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    if not step.modules:  # nothing enabled: not even the member role is assumed
        return StepOutput().model_dump(mode="json")
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "ApplyModules", settings)
    return modules.apply(member, settings, step.modules).model_dump(mode="json")
