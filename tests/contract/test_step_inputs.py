"""Each Task's Payload, as the ASL wires it, is what its handler's input model accepts; events/<step>/ parse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mlplane import steps

ROOT = Path(__file__).resolve().parents[2]
_MODEL = re.compile(r"(\w+)\.model_validate\(event\)")


def task_states() -> list[tuple[str, str, dict[str, Any]]]:
    found: list[tuple[str, str, dict[str, Any]]] = []

    def walk(machine: str, states: dict[str, Any]) -> None:
        for name, state in states.items():
            if state["Type"] == "Task":
                found.append((machine, name, state))
            for branch in state.get("Branches", []):
                walk(machine, branch["States"])

    for machine in ("provision", "deprovision"):
        walk(machine, json.loads((ROOT / "statemachines" / f"{machine}.asl.json").read_text())["States"])
    return found


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def input_model(state: str) -> type[BaseModel]:
    source = (ROOT / "functions" / snake(state) / "app.py").read_text()
    match = _MODEL.search(source)
    assert match, f"functions/{snake(state)}/app.py parses no input model"
    model: type[BaseModel] = getattr(steps, match.group(1))
    return model


@pytest.mark.parametrize(
    ("machine", "state", "definition"), task_states(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_payload_wiring_matches_the_handler_model(machine: str, state: str, definition: dict[str, Any]) -> None:
    model = input_model(state)
    wired = {key.removesuffix(".$") for key in definition["Parameters"]["Payload"]}
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required <= wired, f"{machine}:{state} does not pass {required - wired}"
    assert wired <= set(model.model_fields), f"{machine}:{state} passes {wired - set(model.model_fields)}"


@pytest.mark.parametrize(
    ("machine", "state", "definition"), task_states(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_sample_step_events_parse_into_the_input_model(machine: str, state: str, definition: dict[str, Any]) -> None:
    samples = sorted((ROOT / "events" / snake(state)).glob("*.json"))
    assert samples, f"no events/{snake(state)}/*.json"
    for sample in samples:
        input_model(state).model_validate(json.loads(sample.read_text()))


def test_validate_account_output_feeds_every_provision_step() -> None:
    output = steps.ValidateAccountOutput(
        account_id="111111111111",
        execution="ct-111111111111-188f580510a4e425",
        ou="Workloads",
        action="provision",
        poll_interval_seconds=60,
    ).model_dump(mode="json")
    for machine, state, definition in task_states():
        if machine != "provision" or state in ("ValidateAccount", "Rollback", "RecordRollbackIncomplete"):
            continue
        payload: dict[str, Any] = {}
        for key, path in definition["Parameters"]["Payload"].items():
            node: Any = output
            for part in path.removeprefix("$.").split("."):
                node = node[part]
            payload[key.removesuffix(".$")] = node
        input_model(state).model_validate(payload)
