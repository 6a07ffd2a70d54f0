"""AuditFleet: the scheduled audit of every provisioned account; drift is notified (REQUIREMENTS D1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.accounts.audit import audit_fleet
from mlplane.config import get_settings
from mlplane.member import hub_ledger, member_for
from mlplane.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return audit_fleet(
        settings,
        hub_ledger(settings),
        lambda account: member_for(account, f"audit-{day}", "AuditFleet", settings),
        day=day,
    )
