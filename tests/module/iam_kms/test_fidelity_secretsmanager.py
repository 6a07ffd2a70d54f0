"""The sandbox refuses Secrets Manager calls as AWS does where moto does not (REQUIREMENTS I4, K1).

Sources, per test: botocore's secretsmanager service model (2017-10-17, service-2.json: each operation's errors
and each error shape's documentation) and the Secrets Manager API reference pages it is generated from.
Each test fails without its rule in mlplane_sandbox.fidelity.secretsmanager (moto 5.2.5 accepts the call).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlplane.member import Member
from mlplane_sandbox.fidelity import secretsmanager as rules

from .conftest import MEMBER, place_role

READER = f"arn:aws:iam::{MEMBER}:role/aac-key-reader"


def _policy(principal: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    response: Any = err.value.response
    return response["Error"]["Code"], response["Error"]["Message"]


@pytest.fixture
def sm(member: Member) -> Any:
    return member.for_purpose("access_key").client("secretsmanager")


@pytest.mark.parametrize("state", ["missing", "disabled", "pending-deletion"])
def test_create_secret_with_an_unusable_key_is_an_encryption_failure(member: Member, sm: Any, state: str) -> None:
    """botocore model, CreateSecret errors include EncryptionFailure: "Secrets Manager can't encrypt the protected
    secret text using the provided KMS key. Check that the KMS key is available, enabled, and not in an invalid
    state." (the KMS developer guide's "Key states" table: a disabled or pending-deletion key cannot encrypt)."""
    kms = member.client("kms")
    key_ref = "alias/no-such-key"
    if state != "missing":
        key_ref = kms.create_key()["KeyMetadata"]["KeyId"]
        if state == "disabled":
            kms.disable_key(KeyId=key_ref)
        else:
            kms.schedule_key_deletion(KeyId=key_ref, PendingWindowInDays=7)
    with pytest.raises(ClientError) as err:
        sm.create_secret(Name="aac/x/access-key", SecretString="{}", KmsKeyId=key_ref)
    assert _code(err) == ("EncryptionFailure", rules.ENCRYPTION_FAILURE)
    assert sm.list_secrets()["SecretList"] == []


def test_create_secret_with_an_enabled_key_or_no_value_is_accepted(member: Member, sm: Any) -> None:
    """The twin: an enabled key encrypts; a secret created without a value encrypts nothing yet."""
    kms = member.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/aac-secure-vault", TargetKeyId=key_id)
    sm.create_secret(Name="with-value", SecretString="{}", KmsKeyId="alias/aac-secure-vault")
    sm.create_secret(Name="without-value", KmsKeyId="alias/no-such-key")
    assert sorted(s["Name"] for s in sm.list_secrets()["SecretList"]) == ["with-value", "without-value"]


def test_a_resource_policy_naming_a_role_that_does_not_exist_is_malformed(sm: Any) -> None:
    """botocore model, PutResourcePolicy errors include MalformedPolicyDocumentException ("The resource policy has
    syntax errors."); the IAM User Guide's "Principal" element: a role or user principal must exist when the
    policy is saved. moto stores the policy whatever it names."""
    sm.create_secret(Name="aac/x/access-key", SecretString="{}")
    with pytest.raises(ClientError) as err:
        sm.put_resource_policy(SecretId="aac/x/access-key", ResourcePolicy=_policy(READER))
    assert _code(err) == ("MalformedPolicyDocumentException", rules.UNSUPPORTED_PRINCIPAL)
    place_role(MEMBER, "aac-key-reader")  # the twin: once the role exists, the same policy is accepted
    sm.put_resource_policy(SecretId="aac/x/access-key", ResourcePolicy=_policy(READER))
    assert json.loads(sm.get_resource_policy(SecretId="aac/x/access-key")["ResourcePolicy"]) == json.loads(
        _policy(READER)
    )


def test_a_name_scheduled_for_deletion_cannot_be_created_or_changed(sm: Any) -> None:
    """botocore model, InvalidRequestException: "A parameter value is not valid for the current state of the
    resource. Possible causes: The secret is scheduled for deletion." (CreateSecret, PutResourcePolicy,
    TagResource list it). moto answers ResourceExistsException to the create and changes the deleted secret."""
    sm.create_secret(Name="aac/x/access-key", SecretString="{}")
    sm.delete_secret(SecretId="aac/x/access-key", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as err:
        sm.create_secret(Name="aac/x/access-key", SecretString="{}")
    assert _code(err) == ("InvalidRequestException", rules.NAME_SCHEDULED_FOR_DELETION)
    with pytest.raises(ClientError) as err:
        sm.tag_resource(SecretId="aac/x/access-key", Tags=[{"Key": "k", "Value": "v"}])
    assert _code(err) == ("InvalidRequestException", rules.SCHEDULED_FOR_DELETION)
    with pytest.raises(ClientError) as err:
        sm.put_resource_policy(SecretId="aac/x/access-key", ResourcePolicy=_policy(f"arn:aws:iam::{MEMBER}:root"))
    assert _code(err) == ("InvalidRequestException", rules.SCHEDULED_FOR_DELETION)
    # ForceDeleteWithoutRecovery frees the name (how mlplane deletes the access-key secret).
    sm.delete_secret(SecretId="aac/x/access-key", ForceDeleteWithoutRecovery=True)
    sm.create_secret(Name="aac/x/access-key", SecretString="{}")


@pytest.mark.parametrize(
    "arguments",
    [
        {"ForceDeleteWithoutRecovery": True, "RecoveryWindowInDays": 7},
        {"RecoveryWindowInDays": 6},
        {"RecoveryWindowInDays": 31},
    ],
)
def test_delete_secret_parameters_are_checked_as_aws_does(sm: Any, arguments: dict[str, Any]) -> None:
    """botocore model, DeleteSecretRequest: RecoveryWindowInDays is "The number of days from 7 to 30"; "You can't
    use both this parameter and ForceDeleteWithoutRecovery in the same call"; DeleteSecret's errors include
    InvalidParameterException ("The parameter name or value is invalid."). moto 5.2.5 enforces this itself: the
    test pins it (no sandbox rule), so a moto upgrade that stopped would be noticed."""
    sm.create_secret(Name="aac/x/access-key", SecretString="{}")
    with pytest.raises(ClientError) as err:
        sm.delete_secret(SecretId="aac/x/access-key", **arguments)
    assert _code(err)[0] == "InvalidParameterException"
    assert "DeletedDate" not in sm.describe_secret(SecretId="aac/x/access-key")
