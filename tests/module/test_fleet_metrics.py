"""The fleet metrics (issue 14 D) the dashboard and the alarms in template.yaml read: each status the ledger
writes is one AccountStatus count with its status dimension, each wait that ends one WaitSeconds value.

They are CloudWatch embedded metric format records on stdout (Powertools `single_metric`). An alarm matches a
metric by namespace, name and every dimension (botocore's cloudwatch model, GetMetricStatistics Dimensions:
"CloudWatch treats each unique combination of dimensions as a separate metric ... You must specify the same
dimensions that were used when the metrics were created"), so the records are parsed here and compared with
the template's alarms (tests/contract/test_template_and_asl.py compares the dashboard's names).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlplane import observability
from mlplane.accounts.audit import audit_fleet
from mlplane.config import Settings
from mlplane.eks import watch
from mlplane.errors import Conflict, TimedOut, TransientError
from mlplane.ledger import Ledger, Status
from mlplane_sandbox.template import load_template
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
TABLE = "mlplane-ledger"
MEMBER = "111111111111"
NAMESPACE = "mlplane/test-stack"
ALARMS = {
    name: resource["Properties"]
    for name, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::CloudWatch::Alarm"
}


@pytest.fixture(autouse=True)
def _lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What template.yaml's Globals give a function: metrics on, the service, the stack's namespace."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mlplane")
    monkeypatch.setattr(observability.metrics, "namespace", NAMESPACE)


def emitted(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, dict[str, str], float]]:
    """(namespace, metric, dimensions, value) of each EMF record printed so far, as CloudWatch reads it."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        record = json.loads(line)
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        (dimensions,) = directive["Dimensions"]
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            found.append(
                (
                    directive["Namespace"],
                    metric["Name"],
                    {d: record[d] for d in dimensions},
                    value[0] if isinstance(value, list) else value,
                )
            )
    return found


def test_every_status_the_ledger_writes_is_counted_with_its_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        create_ledger_table(TABLE, REGION)
        ledger = Ledger(boto3.client("dynamodb", region_name=REGION), TABLE)
        capsys.readouterr()
        ledger.set_status(MEMBER, Status.ROLLING_BACK, execution="run-1")
        ledger.set_status(MEMBER, Status.ROLLBACK_HELD, execution="run-1")
        with pytest.raises(Conflict):  # refused: nothing written, nothing counted
            ledger.set_status(MEMBER, Status.READY, execution="run-1", only_from=frozenset({Status.PROVISIONING}))
    assert emitted(capsys) == [
        (NAMESPACE, "AccountStatus", {"status": "ROLLING_BACK", "service": "mlplane"}, 1.0),
        (NAMESPACE, "AccountStatus", {"status": "ROLLBACK_HELD", "service": "mlplane"}, 1.0),
    ]


def test_the_daily_audit_counts_the_ledgers_accounts_in_each_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dashboard's fleet: one Accounts value per status, zeros included, whether or not each account could be
    audited (here none: every member role is out of reach)."""
    use_fake_credentials(monkeypatch, REGION)
    statuses = {
        "111111111111": Status.READY,
        "222222222222": Status.READY,
        "333333333333": Status.ROLLBACK_HELD,
        "444444444444": Status.DEPROVISIONED,
    }

    def unreachable(account_id: str) -> Any:
        raise TransientError(f"{account_id}: the member role could not be assumed")

    with mock_aws():
        create_ledger_table(TABLE, REGION)
        ledger = Ledger(boto3.client("dynamodb", region_name=REGION), TABLE)
        for account_id, status in statuses.items():
            ledger.set_status(account_id, status, execution=f"run-{account_id}")
        capsys.readouterr()
        report = audit_fleet(Settings(ledger_table=TABLE), ledger, unreachable, day="2026-12-06")
    counts = {dims["status"]: value for _, name, dims, value in emitted(capsys) if name == "Accounts"}
    assert counts == {s.value: 0 for s in Status} | {"READY": 2, "ROLLBACK_HELD": 1, "DEPROVISIONED": 1}
    assert report["by_status"] == counts and len(report["not_audited"]) == 3


def test_an_ended_wait_records_the_seconds_it_waited(capsys: pytest.CaptureFixture[str]) -> None:
    for wait in observability.WAITS:
        observability.wait_ended(wait, 7200)
    assert emitted(capsys) == [
        (NAMESPACE, "WaitSeconds", {"wait": wait, "service": "mlplane"}, 7200.0) for wait in observability.WAITS
    ]


def test_the_credential_role_wait_records_its_seconds_when_it_ends_and_not_before(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    member: Any = SimpleNamespace(account_id=MEMBER)
    settings = Settings(vendor_timeout_seconds=3600)
    found = {"yes": False}
    monkeypatch.setattr(watch, "role_exists", lambda _member, _name: found["yes"])
    watch.poll_credential_role(member, settings, attempt=0, waited=0)
    assert emitted(capsys) == []  # still waiting
    found["yes"] = True
    watch.poll_credential_role(member, settings, attempt=3, waited=900)
    found["yes"] = False
    with pytest.raises(TimedOut):
        watch.poll_credential_role(member, settings, attempt=9, waited=3600)
    assert [(name, dims["wait"], value) for _, name, dims, value in emitted(capsys)] == [
        ("WaitSeconds", "credential_role", 900.0),
        ("WaitSeconds", "credential_role", 3600.0),
    ]


def test_the_alarms_on_the_functions_metrics_match_what_they_emit(capsys: pytest.CaptureFixture[str]) -> None:
    """An alarm whose dimensions differ from the record's by one name or value watches a metric nobody emits."""
    observability.count_status(Status.ROLLBACK_INCOMPLETE.value)
    observability.count_status(Status.ROLLBACK_HELD.value)
    records = {(name, tuple(sorted(dims.items()))) for _, name, dims, _ in emitted(capsys)}
    ours = {k: v for k, v in ALARMS.items() if v["Namespace"] != "AWS/States"}
    assert set(ours) == {"RollbackIncompleteAlarm", "RollbackHeldAlarm"}
    for name, alarm in ours.items():
        assert alarm["Namespace"] == {"Fn::Sub": "mlplane/${AWS::StackName}"}, name
        dims = tuple(sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]))
        assert (alarm["MetricName"], dims) in records, name


def test_without_a_namespace_nothing_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside the stack (the CLI, whose stdout is its output) the library prints no metric."""
    monkeypatch.setattr(observability.metrics, "namespace", None)
    observability.count_status(Status.READY.value)
    observability.wait_ended("quotas", 60)
    assert capsys.readouterr().out == ""
