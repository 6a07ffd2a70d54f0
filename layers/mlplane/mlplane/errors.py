"""The errors mlplane raises.

Lambda reports the raised class *name* as the Step Functions error and the ASL's ErrorEquals matches names
exactly (no inheritance), so code raises the leaves; a contract test keeps the ASL's names in sync.
Messages are one line: what failed and the ids, never payloads or secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


class MlplaneError(Exception):
    """Base of every error mlplane raises on purpose."""


class InputRejected(MlplaneError):
    """The event or manual input is not one mlplane can act on; nothing was changed."""


class ConfigError(MlplaneError):
    """The configuration (settings, plan inputs) is invalid; nothing was changed."""


class TransientError(MlplaneError):
    """A throttling or server-side fault that a later attempt may not see."""


class PrincipalNotPropagated(TransientError):
    """KMS does not yet accept a role IAM already shows as a principal (IAM eventual consistency).

    PatchKmsPolicy's wait loop catches it and polls again, up to `kms_propagation_timeout_seconds`; it never
    reaches the state machine, whose Retry budget for TransientError is far shorter than IAM's delay.
    """


class NotificationFailed(MlplaneError):
    """A notification could not be published; the step that owes it is retried until it is (REQUIREMENTS C10).

    Not a TransientError: the ASL retries it on its own, far longer schedule (a topic policy a human must fix),
    and its Catch never starts a rollback.
    """


class AccessDenied(MlplaneError):
    """AWS refused a call for lack of permission."""


class Conflict(MlplaneError):
    """The account is in a state that forbids the action (e.g. already provisioning)."""


class AwsCallFailed(MlplaneError):
    """AWS answered a call with a non-retryable error."""


class VendorFailed(MlplaneError):
    """The vendor's EKS cluster or a node group failed."""


class QuotaDenied(MlplaneError):
    """A Service Quotas increase request was denied or invalid."""


class TimedOut(MlplaneError):
    """A wait loop reached its configured overall timeout."""


class RollbackIncomplete(MlplaneError):
    """Rollback or deprovision could not remove resources that something else blocks."""


class Blocked(RollbackIncomplete):
    """Something mlplane does not own (e.g. a vendor ENI) keeps a resource from being removed; names it."""


_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    }
)
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthFailure",
        "DependencyAccessDeniedException",  # Service Quotas: a service it depends on refused (no permission)
    }
)


def translate(err: ClientError, what: str) -> MlplaneError:
    """Map a botocore ClientError to the mlplane error the workflow retries or rolls back on.

    ``what`` names the call and the ids involved, e.g. ``"ec2:CreateVpc in 111111111111"``.
    """
    code = str(err.response.get("Error", {}).get("Code", "Unknown"))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = str(err.response.get("Error", {}).get("Message", "")).splitlines()[0:1]
    detail = f"{what} failed: {code}" + (f" ({message[0][:200]})" if message and message[0] else "")
    if code in _THROTTLING or status >= 500:
        return TransientError(detail)
    if code in _DENIED or status == 403:
        return AccessDenied(detail)
    return AwsCallFailed(detail)


def error_code(err: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(err.response.get("Error", {}).get("Code", "Unknown"))
