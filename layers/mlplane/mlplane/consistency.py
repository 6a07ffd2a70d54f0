"""EC2 and IAM are eventually consistent: NotFound for an id mlplane knows exists is transient, not "gone".

AWS sources: the EC2 API guide, "Eventual consistency in the Amazon EC2 API" (if you modify or describe a
resource you just created, its ID might not have propagated and the answer is that it does not exist; retry
with exponential back-off, from a couple of seconds up to a few minutes); the IAM User Guide, "Changes that I
make are not always immediately visible" (troubleshoot_general.html#troubleshoot_general_eventual-consistency).
terraform-provider-aws retries NotFound after its own creates for 2 minutes (`ec2PropagationTimeout`,
IAM's `propagationTimeout`); `WINDOW_SECONDS` is the same.

How mlplane tells "not visible yet" from "gone":
- a call made inside `settling()` names ids mlplane knows exist (it created them, or recorded them as created
  in this execution): a NotFound answer is retried with back-off until `WINDOW_SECONDS` have been waited, and
  only then is it an answer ("gone");
- outside `settling()`, NotFound is an answer at once: observing whether something exists before creating it
  (the service user, the policy), and undoing the records of an earlier execution (a deprovision days after
  the create, where NotFound means deleted by hand and no window is still open);
- `settling_for(execution, record)`: rollback settles the records of its own execution (created minutes ago at
  most), so a NotFound on something it made a moment ago never lets it conclude "gone" and leave an orphan. A
  resource of its own execution that really was deleted by hand costs the window once, then counts as gone.

The retry is botocore's own loop: `install(client)` registers a `needs-retry` handler on the EC2 and IAM clients
`mlplane.aws.client` makes; inside `settling()` it returns the back-off delay for a NotFound answer, and
botocore sleeps (the sandbox's virtual clock advances instead) and sends the same request again, as it does for
throttling. Outside `settling()` the handler answers None and botocore's standard retries decide alone.
Context variables are per thread, so one Parallel branch settling does not make another one wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlplane.ledger import ResourceRecord

WINDOW_SECONDS = 120.0
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 30.0
SERVICES = frozenset({"ec2", "iam"})
"""The services whose clients get the handler (KMS's principal propagation is handled where it is used)."""

_window: ContextVar[float] = ContextVar("mlplane_consistency_window", default=0.0)


def is_not_found(code: str) -> bool:
    """EC2's many spellings of "no such resource" (InvalidVpcID.NotFound, NatGatewayNotFound, ...) and IAM's."""
    return "NotFound" in code or code == "NoSuchEntity"


@contextmanager
def settling(window: float = WINDOW_SECONDS) -> Iterator[None]:
    """Inside, a NotFound answer of an EC2 or IAM call is retried with back-off for up to `window` seconds."""
    token = _window.set(window)
    try:
        yield
    finally:
        _window.reset(token)


def settling_for(execution: str, record: ResourceRecord) -> AbstractContextManager[None]:
    """`settling()` for a ledger record this execution made; nothing for an earlier execution's record."""
    return settling() if record.execution == execution else nullcontext()


def delay_after(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th answer (1-based): 2, 4, 8, 16, 30, 30, ..."""
    return min(FIRST_DELAY_SECONDS * 2.0 ** (attempt - 1), MAX_DELAY_SECONDS)


def waited_before(attempt: int) -> float:
    """Seconds the back-off has waited before the `attempt`-th request."""
    return sum(delay_after(n) for n in range(1, attempt))


def retry_not_found(attempts: int, response: Any = None, **_: Any) -> float | None:
    """botocore `needs-retry` handler: the delay before the next attempt, or None to let botocore decide."""
    window = _window.get()
    if window <= 0 or response is None:
        return None
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
    code = str((parsed or {}).get("Error", {}).get("Code", ""))
    if not is_not_found(code) or waited_before(attempts) >= window:
        return None
    return delay_after(attempts)


def install(client: Any) -> None:
    """Let `settling()` retry NotFound answers of this client (idempotent)."""
    client.meta.events.register("needs-retry", retry_not_found, unique_id="mlplane-consistency")
