"""ValidateDeprovision: refuse while the vendor's EKS cluster exists or another run owns the account."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.accounts.deprovision import validate_deprovision
from mlplane.config import get_settings
from mlplane.member import hub_ledger, member_for
from mlplane.observability import logger, metrics
from mlplane.steps import ValidateAccountInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = ValidateAccountInput.model_validate(event)
    logger.append_keys(execution=step.execution)
    settings = get_settings()

    def member_of(account_id: str) -> Any:
        return member_for(account_id, step.execution, "ValidateDeprovision", settings)

    output = validate_deprovision(step.input, step.execution, hub_ledger(settings), member_of, settings)
    return output.model_dump(mode="json")
