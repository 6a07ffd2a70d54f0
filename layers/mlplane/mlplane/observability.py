"""The Powertools singletons shared by handlers and library, and the fleet metrics mlplane emits.

Service name and metrics namespace come from POWERTOOLS_* in template.yaml Globals; nothing here reads them.

The fleet metrics (template.yaml's dashboard and alarms read them; tests/contract/test_template_and_asl.py
keeps the names equal): each is one EMF record with its own dimension, printed at once (`single_metric`),
so one invocation can emit several values of a dimension (Rollback writes ROLLING_BACK, then ROLLED_BACK).
Powertools adds the `service` dimension. Without a namespace (outside the stack: the CLI, module tests)
nothing is printed: the CLI's stdout is its output.

No tracer: the functions and state machines are traced by the services (template.yaml `Tracing: Active`),
without the X-Ray SDK, which is in maintenance mode since 2026-02-25 (end of support 2027-02-25; AWS's
"X-Ray SDK and daemon end of support timeline") and was a third of each handler's cold import.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
metrics = Metrics()

ACCOUNT_STATUS_METRIC = "AccountStatus"
"""Count, dimension `status`: an account's status written to the ledger (Ledger.set_status)."""
STATUS_DIMENSION = "status"
ACCOUNTS_METRIC = "Accounts"
"""Count, dimension `status`: how many accounts the ledger holds in each status, counted by each AuditFleet run
(the dashboard's fleet; AccountStatus counts entries, and a retried step's write counts twice)."""
WAIT_SECONDS_METRIC = "WaitSeconds"
"""Seconds, dimension `wait`: how long a wait loop waited when it ended (ready or timed out)."""
WAIT_DIMENSION = "wait"
WAITS = ("quotas", "eks", "credential_role")
"""The wait loops, as `wait_ended` names them."""


def _emit(name: str, unit: MetricUnit, value: float, dimension: str, dimension_value: str) -> None:
    if is_metrics_disabled() or not metrics.namespace:
        return
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)


def count_status(status: str) -> None:
    """One account entered `status` (a retried step that writes it again counts again)."""
    _emit(ACCOUNT_STATUS_METRIC, MetricUnit.Count, 1, STATUS_DIMENSION, status)


def count_accounts(by_status: Mapping[str, int]) -> None:
    """The ledger's accounts in each status, zeros included (a status with none shows 0, not "no data")."""
    for status, count in by_status.items():
        _emit(ACCOUNTS_METRIC, MetricUnit.Count, count, STATUS_DIMENSION, status)


def wait_ended(wait: str, waited_seconds: int) -> None:
    """A wait loop (`quotas`, `eks`, `credential_role`) ended after `waited_seconds` of waiting."""
    _emit(WAIT_SECONDS_METRIC, MetricUnit.Seconds, waited_seconds, WAIT_DIMENSION, wait)
