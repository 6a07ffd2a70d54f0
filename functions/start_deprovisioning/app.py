"""Target of the account-retirement rules (closed, or moved to the retirement OU): start deprovisioning."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.accounts.retire import start_deprovisioning
from mlplane.config import get_settings
from mlplane.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return start_deprovisioning(event, settings, settings.deprovision_state_machine_arn)
