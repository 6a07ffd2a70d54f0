"""mlplane.aws's process-wide caches under threads (the sandbox runs every Lambda of a burst in one process)."""

from __future__ import annotations

import threading

import boto3

from mlplane import aws


def test_a_session_is_made_while_another_thread_holds_the_lock_held_across_aws_calls() -> None:
    """Compound (a burst of ten accounts deadlocked): `session_for` holds `aws._lock` across its AssumeRole
    call, which, in the sandbox, waits for moto's backend lock; moto, holding that lock to make a new account's
    backend, makes a session for its region lists. `new_session` must not wait for `aws._lock`."""
    made: list[boto3.Session] = []
    with aws._lock:
        worker = threading.Thread(target=lambda: made.append(aws.new_session(region_name="eu-west-1")), daemon=True)
        worker.start()
        worker.join(timeout=30)
        waited = worker.is_alive()
    worker.join()
    assert not waited, "new_session waited for the lock session_for holds across AWS calls"
    assert made and made[0].region_name == "eu-west-1"
