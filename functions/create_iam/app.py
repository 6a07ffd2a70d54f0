"""CreateIam: the service account, its policy (I1-I2) and the secure-vault key (K1)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.iam import apply as iam
from mlplane.kms import apply as kms
from mlplane.member import member_for
from mlplane.observability import logger, metrics, tracer
from mlplane.steps import CreateIamInput, StepOutput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=CreateIamInput)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "CreateIam", settings, adopting=step.action == "adopt")
    return StepOutput.combine(iam.run(member, settings), kms.ensure_key(member, settings)).model_dump(mode="json")
