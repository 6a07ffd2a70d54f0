"""RequestQuotas: file the Service Quotas increases (Q1-Q2)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.quotas import apply as quotas
from mlplane.steps import RequestQuotasInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = RequestQuotasInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "RequestQuotas", settings)
    return quotas.run(member, settings).model_dump(mode="json")
