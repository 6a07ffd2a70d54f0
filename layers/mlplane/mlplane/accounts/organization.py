"""What the hub reads of an account in Organizations: its state (ValidateAccount, ValidateDeprovision).

Apart from `mlplane.accounts.validate`: ValidateDeprovision only asks whether the account was closed, and the
provision checks' code (IAM and network plans) would otherwise be part of its cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.errors import InputRejected, error_code, translate

if TYPE_CHECKING:
    from mlplane.config import Settings

# Organizations' account states once CloseAccount was called: the account's roles can no longer be assumed.
CLOSED_STATES = frozenset({"PENDING_CLOSURE", "SUSPENDED", "CLOSED"})


def organization_state(account_id: str, settings: Settings) -> str:
    """The account's state in the organization (ACTIVE, PENDING_CLOSURE, SUSPENDED, ...), read from the hub."""
    org = aws.client(aws.hub_session(settings.aws_region), "organizations")
    try:
        account = org.describe_account(AccountId=account_id)["Account"]
    except ClientError as err:
        if error_code(err) == "AccountNotFoundException":
            raise InputRejected(f"account {account_id} is not in the organization") from err
        raise translate(err, f"organizations:DescribeAccount {account_id}") from err
    # `State` replaces the deprecated `Status` (botocore's organizations model); moto sends both.
    return str(account.get("State") or account.get("Status"))
