"""Secrets Manager checks real AWS makes and moto 5.2.5 skips (the access key's secret, REQUIREMENTS I4).

- CreateSecret with a secret value and a `KmsKeyId` that cannot encrypt it (the key does not exist, is
  disabled, or is pending deletion) -> `EncryptionFailure` (botocore's secretsmanager model, EncryptionFailure:
  "Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key is
  available, enabled, and not in an invalid state."); moto stores the secret whatever the key. A CreateSecret
  without a value encrypts nothing and is not checked.
- PutResourcePolicy naming an AWS principal (role or user ARN) that does not exist ->
  `MalformedPolicyDocumentException` (the model lists it for PutResourcePolicy: "The resource policy has syntax
  errors."; IAM User Guide, "Principal": a resource policy naming a role or user that does not exist is
  refused); moto stores any policy.
- A secret scheduled for deletion (DeleteSecret with a recovery window) keeps its name: CreateSecret of that
  name -> `InvalidRequestException` (the model's InvalidRequestException: "A parameter value is not valid for
  the current state of the resource. Possible causes: The secret is scheduled for deletion."; moto answers
  ResourceExistsException), and so do PutResourcePolicy, TagResource, UntagResource, PutSecretValue and
  UpdateSecret on it (moto changes it). DeleteSecret's own rules (both ForceDeleteWithoutRecovery and
  RecoveryWindowInDays -> InvalidParameterException; a window outside 7-30 -> InvalidParameterException) moto
  already enforces; tests/module/iam_kms/test_fidelity_secretsmanager.py pins them.
"""

from __future__ import annotations

import json
from typing import Any

from moto.secretsmanager.models import secretsmanager_backends

from mlplane_sandbox.fidelity.iam_kms import kms_key, principal_exists
from mlplane_sandbox.rules import AwsError, Call, before

SERVICE = "secrets-manager"  # botocore's service id, as the interceptor names calls

ENCRYPTION_FAILURE = (
    "Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key"
    " is available, enabled, and not in an invalid state."
)
UNSUPPORTED_PRINCIPAL = "This resource policy contains an unsupported principal."
SCHEDULED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
NAME_SCHEDULED_FOR_DELETION = (
    "You can't create this secret because a secret with this name is already scheduled for deletion."
)
_USABLE_KEY_STATES = ("Enabled",)


def _secret(call: Call, secret_id: str) -> Any:
    """moto's secret that `secret_id` (name or ARN) names in the call's account and region, or None."""
    return secretsmanager_backends[call.account_id][call.region].secrets.get(secret_id)


def _scheduled_for_deletion(call: Call, secret_id: str) -> bool:
    secret = _secret(call, secret_id)
    return secret is not None and bool(getattr(secret, "deleted_date", None))


@before(SERVICE, "CreateSecret")
def create_secret(call: Call) -> None:
    if _scheduled_for_deletion(call, str(call.params.get("Name", ""))):
        raise AwsError("InvalidRequestException", NAME_SCHEDULED_FOR_DELETION)
    key_ref = call.params.get("KmsKeyId")
    has_value = "SecretString" in call.params or "SecretBinary" in call.params
    if not key_ref or not has_value:
        return
    key = kms_key(call, str(key_ref))
    if key is None or key.key_state not in _USABLE_KEY_STATES:
        raise AwsError("EncryptionFailure", ENCRYPTION_FAILURE)


def _aws_principals(policy: dict[str, Any]) -> list[str]:
    statements = policy.get("Statement", [])
    found: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        for key in ("Principal", "NotPrincipal"):
            principal = statement.get(key) if isinstance(statement, dict) else None
            aws = principal.get("AWS", []) if isinstance(principal, dict) else []
            found += [str(p) for p in (aws if isinstance(aws, list) else [aws])]
    return found


@before(SERVICE, "PutResourcePolicy")
def put_resource_policy(call: Call) -> None:
    try:
        policy = json.loads(str(call.params.get("ResourcePolicy", "{}")))
    except json.JSONDecodeError:
        return  # moto refuses it itself
    if isinstance(policy, dict) and not all(principal_exists(arn) for arn in _aws_principals(policy)):
        raise AwsError("MalformedPolicyDocumentException", UNSUPPORTED_PRINCIPAL)


def _refuse_while_scheduled_for_deletion(call: Call) -> None:
    if _scheduled_for_deletion(call, str(call.params.get("SecretId", ""))):
        raise AwsError("InvalidRequestException", SCHEDULED_FOR_DELETION)


for _operation in ("PutResourcePolicy", "TagResource", "UntagResource", "PutSecretValue", "UpdateSecret"):
    before(SERVICE, _operation)(_refuse_while_scheduled_for_deletion)
