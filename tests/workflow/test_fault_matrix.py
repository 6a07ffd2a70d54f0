"""Issue 8.1: on every mutating call of a recorded run, a transient fault is absorbed (READY) and a fatal
one is not retried and rolls back (ROLLED_BACK), or, after the hand-off to the vendor, is held (ROLLBACK_HELD,
issue 13.1). The list of calls comes from the recorded run."""

from __future__ import annotations

import pytest

from tests.conftest import RunSandbox
from tests.workflow.recorded import (
    FAST,
    before_hand_off_mutations,
    comparable,
    handed_off_mutations,
    member_mutations,
    recorded_mutations,
)

SUCCESS = "controltower/create_managed_account_succeeded"
# The codes each service really answers for throttling and for a missing permission.
TRANSIENT = {
    "ec2": "RequestLimitExceeded",
    "iam": "Throttling",
    "kms": "ThrottlingException",
    "servicequotas": "TooManyRequestsException",
}
FATAL = {
    "ec2": "UnauthorizedOperation",
    "iam": "AccessDenied",
    "kms": "AccessDeniedException",
    "servicequotas": "AccessDeniedException",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mutating_call" in metafunc.fixturenames:
        metafunc.parametrize("mutating_call", recorded_mutations())
    if "fatal_call" in metafunc.fixturenames:
        metafunc.parametrize("fatal_call", before_hand_off_mutations())
    if "handed_off_call" in metafunc.fixturenames:
        metafunc.parametrize("handed_off_call", handed_off_mutations())


def test_transient_fault_on_any_mutating_call_is_absorbed(run_sandbox: RunSandbox, mutating_call: str) -> None:
    code = TRANSIENT[mutating_call.split(":", maxsplit=1)[0]]
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[f"{mutating_call}={code}@1"])
    assert result.outcome == "READY", (mutating_call, result.error)
    attempts = [c["ok"] for c in result.api_calls if c["call"] == mutating_call]
    # The first answer was the fault and a retry went through (PutKeyPolicy may also meet KMS's delay
    # before a new role is a valid principal, which PatchKmsPolicy retries too).
    assert attempts[0] is False and attempts[-1] is True
    assert result.leftovers == []


def test_fatal_fault_on_any_mutating_call_is_not_retried_and_rolls_back(
    run_sandbox: RunSandbox, fatal_call: str
) -> None:
    code = FATAL[fatal_call.split(":", maxsplit=1)[0]]
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[f"{fatal_call}={code}@1"], inventory_before=True)
    assert result.outcome == "ROLLED_BACK", (fatal_call, result.error)
    assert result.error is not None and result.error["type"] == "AccessDenied"
    assert code in result.error["message"]
    assert [c["ok"] for c in result.api_calls if c["call"] == fatal_call][:1] == [False]
    failed = [c for c in result.api_calls if c["call"] == fatal_call and not c["ok"]]
    assert len(failed) == 1  # never retried
    assert result.leftovers == []
    assert comparable(result.inventory) == comparable(result.inventory_before)


def test_fatal_fault_after_the_hand_off_is_not_retried_and_is_held(
    run_sandbox: RunSandbox, handed_off_call: str
) -> None:
    """After READY_FOR_VENDOR the vendor is in the account: the rollback is held, nothing removed (C7)."""
    code = FATAL[handed_off_call.split(":", maxsplit=1)[0]]
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[f"{handed_off_call}={code}@1"])
    assert result.outcome == "ROLLBACK_HELD", (handed_off_call, result.error)
    assert result.error is not None and result.error["type"] == "AccessDenied"
    assert code in result.error["message"]
    failed = [c for c in result.api_calls if c["call"] == handed_off_call and not c["ok"]]
    assert len(failed) == 1  # never retried
    assert result.leftovers == []
    assert not [c for c in member_mutations(result) if c.split(":")[1].startswith(("Delete", "Schedule"))]
