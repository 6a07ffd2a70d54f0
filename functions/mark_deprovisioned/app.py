"""MarkDeprovisioned: free the CIDRs, report what AWS cannot undo at once, DEPROVISIONED (also for a closed account)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.member import hub_ledger, member_for
from mlplane.observability import logger, metrics
from mlplane.rollback.whole import mark_closed_deprovisioned, mark_deprovisioned
from mlplane.steps import MarkDeprovisionedInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = MarkDeprovisionedInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    if step.action == "closed":  # the member role can no longer be assumed
        output = mark_closed_deprovisioned(step.account_id, step.execution, hub_ledger(settings), settings)
        return output.model_dump(mode="json")
    member = member_for(step.account_id, step.execution, "MarkDeprovisioned", settings)
    return mark_deprovisioned(member, settings).model_dump(mode="json")
