"""RemoveModules: undo what the optional modules recorded in the ledger (before the network and IAM go)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane import modules
from mlplane.config import get_settings
from mlplane.member import hub_ledger, member_for
from mlplane.observability import logger, metrics
from mlplane.rollback.run import teardown
from mlplane.steps import StepInput, StepOutput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    records = hub_ledger(settings).resources(step.account_id)
    types = [r.type for r in records]
    if not modules.recorded(types):  # no module made anything: no member call
        return StepOutput().model_dump(mode="json")
    member = member_for(step.account_id, step.execution, "RemoveModules", settings)
    modules.prepare_removal(member, settings, types)  # e.g. terminate analysts' launches
    return teardown(member, "modules", modules.handlers(types)).model_dump(mode="json")
