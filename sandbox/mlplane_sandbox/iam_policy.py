"""A small IAM policy evaluator: does an identity (or session) policy allow one authorisation?

moto enforces no session policy, and no maintained Python package evaluates an IAM request against a policy
with its conditions (policyuniverse and policy_sentry parse and expand policies; parliament lints them), so the
least-privilege test evaluates with this. It implements the part of IAM's documented logic ("Policy evaluation
logic", "IAM JSON policy elements: Condition operators") that mlplane's policies use, and refuses the rest
loudly (`Unsupported`) rather than guessing:

- Effect Allow and Deny (an explicit Deny wins; no Allow = implicit deny); Action / NotAction with `*` and `?`
  (case-insensitive); Resource with wildcards per ARN segment (`*` alone matches any resource);
- Condition operators StringEquals, StringLike, ArnEquals, ArnLike, Bool, Null, their `...IfExists` forms
  (except Null), and the set prefixes ForAnyValue: / ForAllValues:. Condition keys are case-insensitive, values
  case-sensitive; the operators of one statement, and the keys of one operator, must all hold (AND), any value
  listed for a key may match (OR). A single-valued operator on a key with several values is refused.
- Policy variables (`${aws:PrincipalOrgID}`) in a condition's values, replaced by the request's single value of
  that key; a key the request lacks makes the condition not hold. Variables elsewhere (Resource) are refused.

A request is one `Authorization` (mlplane_sandbox.authorization): an action, the resources it acts on, and
the request's keys. It is allowed when each resource is allowed (AWS authorises a multi-resource action per
resource); a request with no described resource is evaluated against the resource "*" itself, so only a
statement with `Resource: "*"` can allow it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from mlplane_sandbox.authorization import Authorization, Keys, Resource


class Unsupported(ValueError):
    """The policy uses an element or operator this evaluator does not implement: it must not guess."""


_STATEMENT_ELEMENTS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "Condition"})
_SIMPLE_OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike", "Bool", "Null"})


def allows(policy: Mapping[str, Any], request: Authorization) -> bool:
    """`policy` allows `request` on every resource it acts on."""
    resources = request.resources or (Resource("*"),)
    return all(_decide(policy, request, resource) for resource in resources)


def denied_resources(policy: Mapping[str, Any], request: Authorization) -> list[str]:
    """The ARNs of `request`'s resources that `policy` does not allow (explicitly or implicitly)."""
    resources = request.resources or (Resource("*"),)
    return [r.arn for r in resources if not _decide(policy, request, r)]


def _decide(policy: Mapping[str, Any], request: Authorization, resource: Resource) -> bool:
    context = _context(request.context, resource.keys)
    allowed = False
    for statement in _statements(policy):
        if not _applies(statement, request.action, resource.arn, context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    listed = policy.get("Statement")
    statements = listed if isinstance(listed, list) else [listed]
    for statement in statements:
        if not isinstance(statement, Mapping):
            raise Unsupported(f"statement {statement!r} is not an object")
        unknown = set(statement) - _STATEMENT_ELEMENTS
        if unknown:
            raise Unsupported(f"statement element(s) {sorted(unknown)} (e.g. NotResource, Principal)")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise Unsupported(f"Effect {statement.get('Effect')!r}")
        if ("Action" in statement) == ("NotAction" in statement):
            raise Unsupported("a statement needs exactly one of Action and NotAction")
        if "Resource" not in statement:
            raise Unsupported("a statement without Resource")
    return list(statements)


def _context(request: Keys, resource: Keys) -> dict[str, tuple[str, ...]]:
    merged = {key.lower(): values for key, values in request.items()}
    merged.update({key.lower(): values for key, values in resource.items()})
    return merged


def _listed(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, (dict, list, tuple)) or item is None:
            raise Unsupported(f"policy value {item!r}")
    return [str(item).lower() if isinstance(item, bool) else str(item) for item in values]


def _applies(statement: Mapping[str, Any], action: str, arn: str, context: Mapping[str, tuple[str, ...]]) -> bool:
    if "Action" in statement:
        matched = any(_glob(pattern, action, ignore_case=True) for pattern in _listed(statement["Action"]))
    else:
        matched = not any(_glob(pattern, action, ignore_case=True) for pattern in _listed(statement["NotAction"]))
    if not matched:
        return False
    if not any(_resource_matches(pattern, arn) for pattern in _listed(statement["Resource"])):
        return False
    conditions = statement.get("Condition") or {}
    if not isinstance(conditions, Mapping):
        raise Unsupported(f"Condition {conditions!r}")
    return all(
        _holds(operator, key, _listed(expected), context)
        for operator, block in conditions.items()
        for key, expected in _block(operator, block).items()
    )


def _block(operator: str, block: Any) -> Mapping[str, Any]:
    if not isinstance(block, Mapping):
        raise Unsupported(f"condition {operator}: {block!r}")
    return block


def _holds(operator: str, key: str, expected: list[str], context: Mapping[str, tuple[str, ...]]) -> bool:
    """One key of one condition operator, as IAM's condition operator reference defines it."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise Unsupported(f"condition set operator {qualifier}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in _SIMPLE_OPERATORS or (base == "Null" and (if_exists or qualifier)):
        raise Unsupported(f"condition operator {operator}")
    values = context.get(key.lower())
    substituted = _substituted(expected, context)
    if substituted is None:
        return False
    expected = substituted
    if base == "Null":
        if any(e not in ("true", "false") for e in expected):
            raise Unsupported(f"Null {key}: {expected}")
        return any((e == "true") == (values is None) for e in expected)
    if values is None:
        # Absent key: ForAllValues holds (the empty set), ...IfExists holds, anything else does not.
        return qualifier == "ForAllValues" or if_exists
    if qualifier == "ForAnyValue":
        return any(_matches(base, e, v) for v in values for e in expected)
    if qualifier == "ForAllValues":
        return all(any(_matches(base, e, v) for e in expected) for v in values)
    if len(values) != 1:
        raise Unsupported(f"{operator} on {key}, which has several values {values}: use ForAnyValue/ForAllValues")
    return any(_matches(base, e, values[0]) for e in expected)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substituted(expected: list[str], context: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """Condition values with their policy variables replaced from the request ("IAM policy elements: Variables
    and tags"). A variable whose key the request lacks (or has several values of) makes the condition not hold
    (None): AWS says it may invalidate the whole statement, so no value of the key is let match. The escapes
    ${*} ${?} ${$} and default values (${key, 'default'}) are refused."""
    substituted = []
    for value in expected:
        names = _VARIABLE.findall(value)
        if any(name in ("*", "?", "$") or "," in name for name in names):
            raise Unsupported(f"policy variable form in {value!r}")
        found = {name: context.get(name.lower(), ()) for name in names}
        if any(len(values) != 1 for values in found.values()):
            return None
        substituted.append(_VARIABLE.sub(functools.partial(_variable_value, found), value))
    return substituted


def _variable_value(found: Mapping[str, tuple[str, ...]], match: re.Match[str]) -> str:
    return found[match.group(1)][0]


def _matches(operator: str, expected: str, actual: str) -> bool:
    if operator == "StringEquals":
        return actual == expected
    if operator == "StringLike":
        return _glob(expected, actual)
    if operator == "ArnEquals":
        return actual == expected
    if operator == "ArnLike":
        return _arn_like(expected, actual)
    if operator == "Bool":
        if expected.lower() not in ("true", "false"):
            raise Unsupported(f"Bool value {expected!r}")
        return actual.lower() == expected.lower()
    raise Unsupported(f"condition operator {operator}")  # pragma: no cover - filtered by _holds


def _resource_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    if arn == "*":  # a request with no described resource: only `*` allows it
        return False
    return _arn_like(pattern, arn)


def _arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: the six colon-separated parts of the ARN are matched separately, each with `*` and `?`."""
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(_glob(w, a) for w, a in zip(wanted, actual, strict=True))


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _compiled(pattern, ignore_case).fullmatch(value) is not None


@cache
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise Unsupported(f"policy variable in {pattern!r}")
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def refused(policy: Mapping[str, Any], requests: Iterable[Authorization]) -> list[Authorization]:
    """The requests `policy` does not allow (for assertions that name what is denied)."""
    return [request for request in requests if not allows(policy, request)]
