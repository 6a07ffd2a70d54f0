"""The deployed functions log at INFO (template.yaml LOG_LEVEL); the sandbox runs them at WARNING. A Powertools
logger call with an extra key that is a LogRecord attribute (`module`, `name`, `msg`, ...) raises KeyError
("Attempt to overwrite 'module' in LogRecord") only when that level is enabled, so the sandbox would never show
it: every logger call of the library and the handlers is checked here instead."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _logger_keys() -> list[tuple[str, str]]:
    found = []
    for source in [*(ROOT / "layers" / "mlplane" / "mlplane").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logger"
            ):
                found += [(f"{source.relative_to(ROOT)}:{node.lineno}", k.arg) for k in node.keywords if k.arg]
    return found


def test_no_logger_call_overwrites_a_log_record_attribute() -> None:
    keys = _logger_keys()
    assert len(keys) > 20  # the walk finds the calls
    assert [(where, key) for where, key in keys if key in RESERVED] == []


def test_a_reserved_key_does_raise_at_info() -> None:
    """What the check above prevents, shown on Powertools itself."""
    import pytest
    from aws_lambda_powertools import Logger

    with pytest.raises(KeyError, match="overwrite 'module'"):
        Logger(service="mlplane", level="INFO").info("x", module="m")
