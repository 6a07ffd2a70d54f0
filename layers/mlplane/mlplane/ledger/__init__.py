"""The ledger: account status and the resources mlplane created, in DynamoDB."""

from mlplane.ledger.models import AccountStatus, ResourceRecord, ResourceState, Status
from mlplane.ledger.store import Ledger

__all__ = ["AccountStatus", "Ledger", "ResourceRecord", "ResourceState", "Status"]
