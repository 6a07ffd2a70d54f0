"""The moto set-up every module test shares: fake credentials, fresh mlplane caches, the ledger table."""

from __future__ import annotations

import boto3
import pytest

from mlplane import aws
from mlplane.config import reset_settings


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Credentials moto accepts (and nothing real can use), and no session or settings cached from before."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    aws.reset()
    reset_settings()


def create_ledger_table(name: str, region: str) -> None:
    """The ledger table as template.yaml declares it (pk/sk strings, on demand)."""
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
