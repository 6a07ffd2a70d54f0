"""RecordRollbackIncomplete: the last resort after Rollback or a deprovision step failed for good (C8)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.member import hub_ledger
from mlplane.observability import logger, metrics
from mlplane.rollback.run import record_incomplete
from mlplane.steps import RecordRollbackIncompleteInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = RecordRollbackIncompleteInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    output = record_incomplete(hub_ledger(settings), settings, step.account_id, step.execution, step.error_text)
    return output.model_dump(mode="json")
