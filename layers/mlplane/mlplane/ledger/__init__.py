"""The ledger: account status and the resources mlplane created, in DynamoDB."""

from mlplane.ledger.models import AccountEntry, AccountStatus, ResourceRecord, ResourceState, Status
from mlplane.ledger.store import Ledger

__all__ = ["AccountEntry", "AccountStatus", "Ledger", "ResourceRecord", "ResourceState", "Status"]
