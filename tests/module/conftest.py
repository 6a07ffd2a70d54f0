"""Fixtures shared by the module tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.module.moto_account import create_ledger_table, use_fake_credentials

LEDGER_REGION = "eu-west-1"
LEDGER_TABLE = "mlplane-ledger"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on moto with the ledger table (`LEDGER_TABLE`) made as template.yaml makes it."""
    use_fake_credentials(monkeypatch, LEDGER_REGION)
    with mock_aws():
        create_ledger_table(LEDGER_TABLE, LEDGER_REGION)
        yield boto3.client("dynamodb", region_name=LEDGER_REGION)
