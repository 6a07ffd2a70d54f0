"""PatchKmsPolicy: merge the credential-service-role statement into the vault key policy (K2), one poll of its
wait loop (KMS accepts a just-created role only after IAM has propagated it)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  imported first, from here: README, "Cold import"
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplane.config import get_settings
from mlplane.kms import apply as kms
from mlplane.member import member_for
from mlplane.observability import logger, metrics
from mlplane.steps import PatchKmsPolicyInput


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = PatchKmsPolicyInput.model_validate(event)
    logger.append_keys(account_id=step.account_id, execution=step.execution)
    settings = get_settings()
    member = member_for(step.account_id, step.execution, "PatchKmsPolicy", settings)
    return kms.poll_patch_policy(member, settings, step.attempt).model_dump(mode="json")
