"""NotifyReadyForVendor: tell the AAC admin to trigger the private data plane (V1)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.accounts.lifecycle import notify_ready_for_vendor
from mlplane.config import get_settings
from mlplane.member import hub_ledger
from mlplane.observability import logger, metrics
from mlplane.steps import StepInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    return notify_ready_for_vendor(step.account_id, step.execution, settings, hub_ledger(settings)).model_dump(
        mode="json"
    )
