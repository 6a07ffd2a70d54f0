"""RemoveIam: detach and delete what mlplane created in IAM (I1-I2)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.iam import access_key
from mlplane.iam import apply as iam
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.rollback.run import teardown
from mlplane.steps import StepInput

# The IAM domain is two modules: the user and its policies (iam.apply), the access key and its secret (access_key).
IAM_HANDLERS = {**iam.HANDLERS, **access_key.HANDLERS}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "RemoveIam", settings)
    return teardown(member, "iam", IAM_HANDLERS).model_dump(mode="json")
