"""ListReadyAccounts: the READY accounts the fleet reconcile converges, and its concurrency cap (D2)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.accounts.lifecycle import ready_accounts
from mlplane.config import get_settings
from mlplane.member import hub_ledger
from mlplane.observability import logger, metrics
from mlplane.steps import ListReadyAccountsInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = ListReadyAccountsInput.model_validate(event)
    settings = get_settings()
    return ready_accounts(settings, hub_ledger(settings), execution=step.execution)
