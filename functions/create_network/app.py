"""CreateNetwork: the AAC VPC of seed 000 (N1-N4)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.deadline import Deadline
from mlplane.member import member_for
from mlplane.network import apply as network
from mlplane.observability import logger, metrics, tracer
from mlplane.steps import CreateNetworkInput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=CreateNetworkInput)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(
        step.account_id,
        step.execution,
        "CreateNetwork",
        settings,
        Deadline.of(context),
        adopting=step.action == "adopt",
    )
    return network.run(member, settings).model_dump(mode="json")
