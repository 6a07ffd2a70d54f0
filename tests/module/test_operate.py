"""Operator commands against a deployed stack (moto plays the hub): start by hand, read status (C2, C5)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from mlplane import aws
from mlplane.errors import ConfigError, Conflict
from mlplane.ledger import Ledger, Status
from mlplane_cli import operate
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
MEMBER = "111111111111"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
        role = "arn:aws:iam::123456789012:role/sfn"
        outputs = {
            "ProvisionStateMachineArn": sfn.create_state_machine(name="p", definition=definition, roleArn=role)[
                "stateMachineArn"
            ],
            "DeprovisionStateMachineArn": sfn.create_state_machine(name="d", definition=definition, roleArn=role)[
                "stateMachineArn"
            ],
            "LedgerTableName": "mlplane-ledger",
        }
        create_ledger_table("mlplane-ledger", REGION)
        # moto's CloudFormation needs a dozen more packages; the stack's outputs are all these commands read.
        monkeypatch.setattr(operate, "stack_outputs", lambda name, region: outputs if name == "mlplane" else {})
        yield outputs
    aws.reset()


def test_c2_provision_by_hand_starts_the_stack_state_machine_with_the_documented_input(
    stack: dict[str, str],
) -> None:
    started = operate.provision(MEMBER, "oncall", "back-fill", stack="mlplane", region=REGION)
    assert started["started"] is True and started["execution"].startswith(f"op-{MEMBER}-")
    execution = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=started["execution_arn"]
    )
    assert json.loads(execution["input"]) == {"account_id": MEMBER, "requested_by": "oncall", "reason": "back-fill"}
    assert execution["stateMachineArn"] == stack["ProvisionStateMachineArn"]


def test_c4_deprovision_by_hand_starts_the_deprovision_state_machine(stack: dict[str, str]) -> None:
    started = operate.deprovision(MEMBER, "oncall", "retired", stack="mlplane", region=REGION)
    assert started["execution"].startswith(f"dp-{MEMBER}-")
    assert started["execution_arn"].startswith(stack["DeprovisionStateMachineArn"].replace("stateMachine", "execution"))


def test_c7_resume_starts_the_provision_state_machine_for_a_held_account(stack: dict[str, str]) -> None:
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger")
    ledger.set_status(MEMBER, Status.ROLLBACK_HELD, execution="ct-111111111111-abc", error="held")
    started = operate.resume(MEMBER, "oncall", "", stack="mlplane", region=REGION)
    assert started["started"] is True and started["execution"].startswith(f"op-{MEMBER}-")
    execution = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=started["execution_arn"]
    )
    assert execution["stateMachineArn"] == stack["ProvisionStateMachineArn"]
    assert json.loads(execution["input"]) == {
        "account_id": MEMBER,
        "requested_by": "oncall",
        "reason": "resume after ROLLBACK_HELD",
    }


@pytest.mark.parametrize("status", [None, Status.READY, Status.ROLLED_BACK, Status.PROVISIONING])
def test_c7_resume_refuses_an_account_that_is_not_held(stack: dict[str, str], status: Status | None) -> None:
    if status is not None:
        Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger").set_status(
            MEMBER, status, execution="ct-111111111111-abc"
        )
    with pytest.raises(Conflict, match="not ROLLBACK_HELD: nothing to resume"):
        operate.resume(MEMBER, "oncall", "", stack="mlplane", region=REGION)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert sfn.list_executions(stateMachineArn=stack["ProvisionStateMachineArn"])["executions"] == []


def test_c5_status_reads_the_ledger(stack: dict[str, str]) -> None:
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger")
    ledger.set_status(MEMBER, Status.READY, execution="ct-111111111111-abc")
    ledger.record_intent(MEMBER, key="vpc", type="ec2:vpc", step="CreateNetwork", execution="ct-111111111111-abc")
    ledger.record_created(MEMBER, key="vpc", resource_id="vpc-123")
    document = operate.status(MEMBER, stack="mlplane", region=REGION)
    assert document["status"]["status"] == "READY"
    assert document["resources"] == [
        {"type": "ec2:vpc", "key": "vpc", "id": "vpc-123", "state": "created", "step": "CreateNetwork"}
    ]
    assert operate.status("222222222222", stack="mlplane", region=REGION)["status"] is None


def test_a_stack_without_mlplane_outputs_is_a_clear_error(stack: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="has no output"):
        operate.output({}, "ProvisionStateMachineArn", "other-stack")


def test_stack_outputs_are_read_from_describe_stacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset()
    client = aws.client(aws.hub_session(REGION), "cloudformation")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "mlplane",
                        "CreationTime": "2026-11-23T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": "LedgerTableName", "OutputValue": "mlplane-ledger"}],
                    }
                ]
            },
            {"StackName": "mlplane"},
        )
        assert operate.stack_outputs("mlplane", REGION) == {"LedgerTableName": "mlplane-ledger"}
    aws.reset()


def test_accounts_lists_every_account_with_owner_since_error_ou_deferred_and_held(stack: dict[str, str]) -> None:
    """`mlplane accounts` (issue 15): one Scan of the ledger; the OU is the one ValidateAccount recorded."""
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger")
    ledger.set_status(MEMBER, Status.ROLLED_BACK, execution="ct-111111111111-abc", error="ec2:CreateVpc failed")
    ledger.record_ou(MEMBER, "Workloads")
    ledger.record_intent(MEMBER, key="kms/vault", type="kms:key", step="CreateIam", execution="ct-111111111111-abc")
    ledger.record_created(MEMBER, key="kms/vault", resource_id="key-1")
    ledger.record_deferred(MEMBER, key="kms/vault", reason="scheduled for deletion on 2026-12-09")
    held = "222222222222"
    ledger.set_status(held, Status.ROLLBACK_HELD, execution="op-222222222222-1", error="held for the vendor")
    ledger.record_intent(held, key="vpc", type="ec2:vpc", step="CreateNetwork", execution="op-222222222222-1")
    ledger.record_created(held, key="vpc", resource_id="vpc-9")
    ledger.put_item("POOL#10.0.0.0/8", "10.0.0.0/16", {"account_id": held})  # not an account: not listed

    listed = operate.accounts(stack="mlplane", region=REGION)
    assert [a["account_id"] for a in listed] == [MEMBER, held]
    first, second = listed
    assert first["status"] == "ROLLED_BACK" and first["execution"] == "ct-111111111111-abc"
    assert first["error"] == "ec2:CreateVpc failed" and first["since"].startswith("20")
    assert first["ou"] == "Workloads"
    assert first["deferred"] == [{"type": "kms:key", "id": "key-1", "reason": "scheduled for deletion on 2026-12-09"}]
    assert first["held"] == []
    assert second["ou"] is None and second["deferred"] == []
    assert second["held"] == [{"type": "ec2:vpc", "id": "vpc-9"}]

    assert [a["account_id"] for a in operate.accounts(stack="mlplane", region=REGION, status="ROLLBACK_HELD")] == [held]
    assert [a["account_id"] for a in operate.accounts(stack="mlplane", region=REGION, ou="Workloads")] == [MEMBER]
    assert operate.accounts(stack="mlplane", region=REGION, ou="Sandbox") == []
