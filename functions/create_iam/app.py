"""CreateIam: the service account, its policy (I1-I2), the secure-vault key (K1) and, if configured, the service
account's access key kept in Secrets Manager (I4)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.iam import access_key
from mlplane.iam import apply as iam
from mlplane.kms import apply as kms
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.steps import CreateIamInput, StepOutput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = CreateIamInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "CreateIam", settings, adopting=step.action == "adopt")
    done = StepOutput.combine(iam.run(member, settings), kms.ensure_key(member, settings))
    return StepOutput.combine(done, access_key.ensure(member, settings)).model_dump(mode="json")  # after the key
