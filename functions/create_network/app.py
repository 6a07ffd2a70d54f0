"""CreateNetwork: the AAC VPC of seed 000 (N1-N4)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.deadline import Deadline
from mlplane.member import member_for
from mlplane.network import apply as network
from mlplane.observability import logger, metrics
from mlplane.steps import CreateNetworkInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = CreateNetworkInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings().network_for(step.network_blueprint)  # the blueprint ValidateAccount chose (N6)
    member = member_for(
        step.account_id,
        step.execution,
        "CreateNetwork",
        settings,
        Deadline.of(context),
        adopting=step.action == "adopt",
    )
    return network.run(member, settings).model_dump(mode="json")
