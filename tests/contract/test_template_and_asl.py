"""template.yaml, the ASL and the functions agree: one name per step, errors the ASL can match, lint clean."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane import errors
from mlplane_sandbox.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
MACHINES = {
    name: json.loads((ROOT / "statemachines" / f"{name}.asl.json").read_text()) for name in ("provision", "deprovision")
}


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch))
    return found


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_task_state_maps_to_its_function_directory_and_resource(machine: str) -> None:
    resource = TEMPLATE["Resources"][f"{machine.capitalize()}StateMachine"]["Properties"]
    substitutions = resource["DefinitionSubstitutions"]
    for name, state in all_states(MACHINES[machine]).items():
        if state["Type"] != "Task":
            continue
        assert state["Parameters"]["FunctionName"] == f"${{{name}FunctionArn}}"
        assert substitutions[f"{name}FunctionArn"] == {"Fn::GetAtt": [f"{name}Function", "Arn"]}
        code = functions()[f"{name}Function"]["Properties"]["CodeUri"]
        assert code == f"functions/{snake(name)}/"
        assert (ROOT / code / "app.py").is_file()


def test_every_function_directory_has_its_resource() -> None:
    dirs = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").is_file()}
    resources = {f["Properties"]["CodeUri"].strip("/").split("/")[1] for f in functions().values()}
    assert dirs == resources


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_substitution_in_the_asl_is_defined(machine: str) -> None:
    text = (ROOT / "statemachines" / f"{machine}.asl.json").read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    defined = set(TEMPLATE["Resources"][f"{machine.capitalize()}StateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used == defined


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_error_names_are_states_lambda_or_mlplane_errors(machine: str) -> None:
    known = {name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, Exception)}
    for state in all_states(MACHINES[machine]).values():
        for clause in state.get("Retry", []) + state.get("Catch", []):
            for name in clause["ErrorEquals"]:
                assert name.startswith(("States.", "Lambda.")) or name == "Sandbox.Timedout" or name in known, name


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_retries_never_cover_states_all(machine: str) -> None:
    for state in all_states(MACHINES[machine]).values():
        for clause in state.get("Retry", []):
            assert "States.ALL" not in clause["ErrorEquals"]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_task_retries_a_lambda_that_timed_out_or_ran_out_of_memory(machine: str) -> None:
    """Step Functions developer guide, "Handle Lambda service exceptions": "Unhandled errors in Lambda are
    reported as Lambda.Unknown ... These include out-of-memory errors and function timeouts"; a timeout is
    also reported as Sandbox.Timedout. Every step is idempotent, so every Task retries both."""
    for name, state in all_states(MACHINES[machine]).items():
        if state["Type"] != "Task":
            continue
        retried = {error for clause in state.get("Retry", []) for error in clause["ErrorEquals"]}
        assert {"Sandbox.Timedout", "Lambda.Unknown"} <= retried, name


def test_quota_wait_backs_off_and_lasts_five_days() -> None:
    """REQUIREMENTS Q3: the quota wait lasts days (default 5) and its Wait reads the backed-off delay the
    poll returns, not the fixed poll interval."""
    provision = all_states(MACHINES["provision"])
    assert provision["QuotasPollDelay"]["SecondsPath"] == "$.polls.quotas.wait_seconds"
    assert provision["WaitForQuotas"]["ResultSelector"]["wait_seconds.$"] == "$.Payload.wait_seconds"
    assert TEMPLATE["Parameters"]["QuotaTimeoutSeconds"]["Default"] == 5 * 86_400


def test_contract_state_names_are_present() -> None:
    provision = all_states(MACHINES["provision"])
    for name in (
        "ValidateAccount",
        "CreateNetwork",
        "CreateIam",
        "RequestQuotas",
        "WaitForEks",
        "WaitForCredentialRole",
        "PatchKmsPolicy",
        "MarkReady",
        "Rollback",
    ):
        assert provision[name]["Type"] == "Task", name


def test_rules_listen_for_create_and_update_managed_account_succeeded_in_allowed_ous() -> None:
    events = functions()["StartProvisioningFunction"]["Properties"]["Events"]
    names = sorted(e["Properties"]["Pattern"]["detail"]["eventName"][0] for e in events.values())
    assert names == ["CreateManagedAccount", "UpdateManagedAccount"]
    for event in events.values():
        details = event["Properties"]["Pattern"]["detail"]["serviceEventDetails"]
        (status,) = details.values()
        assert status["state"] == ["SUCCEEDED"]
        assert status["organizationalUnit"]["organizationalUnitName"] == {"Ref": "AllowedOus"}


def test_ledger_table_has_point_in_time_recovery_and_encryption() -> None:
    props = TEMPLATE["Resources"]["LedgerTable"]["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_template_passes_cfn_lint_offline() -> None:
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(ROOT / "template.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
