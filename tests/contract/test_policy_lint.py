"""The policies pass an IAM policy linter (issue 14 D): parliament, over the member session policy and every inline
policy statement of template.yaml and forwarder.yaml, finds nothing but the findings listed here, each with its
reason (the README's "Security checks" repeats them). A finding that goes away must leave the list too.

Every purpose's session policy is linted (mlplane.member.PURPOSES), and every further customer policy shipped in
mlplane/policies/ (SaExtraPolicies). parliament (duo-labs) checks each statement
against the Service Authorization Reference it ships
(iam_definition.json): actions that exist, resource ARNs that fit the action's resource types, condition keys the
action knows, Resource "*" on actions that could be scoped. It does not evaluate conditions: scoping by
aws:ResourceTag or kms:ResourceAliases on Resource "*" is reported as RESOURCE_STAR all the same;
tests/contract/test_least_privilege.py proves those conditions against the recorded calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mlplane import aws
from mlplane.config import Settings
from mlplane.iam.policy import policies_folder, shipped_policy_files
from mlplane.member import PURPOSES, session_policy
from mlplane_sandbox.template import Resolver, load_template, parameter_values, project_root

parliament = pytest.importorskip("parliament", reason="parliament is in the dev dependencies")

ACCOUNT = "123456789012"
REGION = "eu-west-1"
_NO_VALUE = object()

_TAG_SCOPED = "scoped by its Condition (aws:ResourceTag/mlplane:managed); parliament does not read conditions"
JUSTIFIED: dict[tuple[str, str, str], str] = {
    ("session", "ReadsAndCreates", "RESOURCE_STAR"): "reads carry no secret material; a create authorises a "
    "resource that does not exist yet, and kms:TagResource has no key telling tag on create from a later tag",
    ("session", "MlplaneTagged", "RESOURCE_STAR"): _TAG_SCOPED,
    ("session", "VaultKey", "RESOURCE_STAR"): "scoped by its Condition (kms:ResourceAliases = the vault alias)",
    ("session", "VaultKey", "UNKNOWN_CONDITION_FOR_ACTION"): "kms:ResourceAliases is a condition key of the key "
    "resource type PutKeyPolicy acts on (Service Authorization Reference); parliament checks action-level keys only",
    ("session", "VaultAlias", "RESOURCE_MISMATCH"): "Create/DeleteAlias act on the alias and the key; this "
    "statement allows the alias, MlplaneTagged the key (IAM authorises each resource of a request)",
    ("session", "ServiceAccount", "UNKNOWN_CONDITION_FOR_ACTION"): "ArnLikeIfExists iam:PolicyARN constrains "
    "Attach/DetachUserPolicy, the two actions with that key, and no other; two statements would not fit 2,048",
    ("session", "AdoptedRouteTables", "RESOURCE_STAR"): "scoped by its Condition (aws:ResourceTag/mlplane:managed = "
    "adopted: the hand-made route tables mlplane adopted, D3); parliament does not read conditions",
    ("session", "AdoptedKey", "RESOURCE_STAR"): "scoped by its Condition (kms:ResourceAliases = the vault alias; "
    "only mlplane:* tag keys)",
    ("session", "AdoptedKey", "UNKNOWN_CONDITION_FOR_ACTION"): "kms:ResourceAliases is a condition key of the key "
    "resource type Tag/UntagResource act on (Service Authorization Reference); parliament checks action-level keys "
    "only",
    ("session", "ServiceLinkedRoles", "RESOURCE_STAR"): "scoped by iam:AWSServiceName (two services)",
    ("session", "VaultKeyForSecret", "RESOURCE_STAR"): "scoped by its Condition: the vault key (kms:ResourceAliases), "
    "only through Secrets Manager (kms:ViaService), only for the access-key secret (its encryption context)",
    ("session", "VaultKeyForSecret", "UNKNOWN_CONDITION_FOR_ACTION"): "kms:ResourceAliases is a key of the key "
    "resource type; parliament checks action-level keys only",
    ("session", "ScCatalog", "RESOURCE_STAR"): "Service Catalog's create, list and search actions and its "
    "constraint and association actions take no resource type (Service Authorization Reference, "
    "list_awsservicecatalog: AssociateProductWithPortfolio has none); the per-portfolio/product actions stay on * "
    "with them until their resource types are checked against the reference (README, M2): a wrong scope would "
    "fail a real deployment with AccessDenied. Only in the service_catalog session, on the account's own catalog",
    ("session", "CanvasManagedPolicyExists", "INVALID_ARN"): "an AWS managed policy's ARN has `aws` for its account "
    "(arn:aws:iam::aws:policy/..., IAM user guide, 'IAM identifiers'); parliament expects 12 digits or a wildcard",
    ("template", "ValidateAccountFunction", "RESOURCE_STAR"): "organizations:DescribeAccount, "
    "DescribeOrganizationalUnit and ListTagsForResource need the organization id in their ARNs, an optional "
    "parameter; read-only",
    ("template", "ValidateDeprovisionFunction", "RESOURCE_STAR"): "organizations:DescribeAccount needs the "
    "organization id in its ARN, an optional parameter; read-only",
    ("template", "ValidateAccountFunction", "RESOURCE_MISMATCH"): "states:DescribeExecution on the two standard "
    "state machines' executions; parliament also asks for the express-execution format, which they have not",
    ("template", "ValidateDeprovisionFunction", "RESOURCE_MISMATCH"): "as ValidateAccountFunction's",
    ("template", "OperatorPolicy", "RESOURCE_STAR"): "the operator's plan reads the organization as "
    "ValidateAccountFunction does (same reason); read-only",
    ("template", "OperatorPolicy", "RESOURCE_MISMATCH"): "as ValidateAccountFunction's: the CLI follows executions "
    "of the three standard state machines",
}


def _session_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every purpose's session policy as STS gets it (filled, minified, without Sids), named by the shipped
    file's Sids (unique across the purposes: tests/contract/test_member_role.py)."""
    for purpose in PURPOSES:
        filled = json.loads(session_policy(Settings(), purpose))["Statement"]
        shipped = aws.member_session_policy_template(purpose)["Statement"]
        assert len(filled) == len(shipped)
        for sid_source, statement in zip(shipped, filled, strict=True):
            yield str(sid_source["Sid"]), statement


def _arn(resources: dict[str, Any], name: str) -> str:
    kind = resources[name]["Type"]
    formats = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
        "AWS::Serverless::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
        "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
    }
    if kind not in formats:
        raise KeyError(f"{name} ({kind}): add its ARN format to this test")
    return formats[kind]


class _Refs(dict[str, Any]):
    """Ref / Fn::GetAtt of a template resource: an ARN of its type, as CloudFormation would give it."""

    def __init__(self, resources: dict[str, Any]) -> None:
        super().__init__()
        self.resources = resources

    def __contains__(self, key: object) -> bool:
        return str(key).split(".")[0] in self.resources

    def __getitem__(self, key: str) -> Any:
        name, _, attribute = key.partition(".")
        return name if attribute and attribute != "Arn" else _arn(self.resources, name)


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if v is not _NO_VALUE}
    if isinstance(node, list):
        return [_strip(v) for v in node if v is not _NO_VALUE]
    return node


def _template_statements(file: str, overrides: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource, statement) for each inline statement of the template's functions and roles, resolved."""
    template = load_template(project_root() / file)
    resources = template["Resources"]
    refs = _Refs(resources)
    resolver = Resolver(
        parameters=parameter_values(template, overrides),
        refs=refs,
        attrs=refs,
        pseudo={
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": "mlplane",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlplane/0f1e2d3c-4b5a-6978",
            "AWS::NoValue": _NO_VALUE,  # type: ignore[dict-item]
        },
        conditions=template.get("Conditions"),
    )
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        policies = properties.get("Policies", [])
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            policies = [properties]
        for policy in policies if isinstance(policies, list) else []:
            # a function's statements, a role's PolicyDocument; SAM policy templates are AWS's own documents
            document = policy.get("PolicyDocument", policy) if isinstance(policy, dict) else {}
            for statement in document.get("Statement", []):
                yield name, _strip(resolver.resolve(statement))


def _customer_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each statement of the further customer policies shipped in mlplane/policies/ (SaExtraPolicies), by Sid."""
    for name in shipped_policy_files():
        document = json.loads(policies_folder().joinpath(f"{name}.json").read_text(encoding="utf-8"))
        for statement in document["Statement"]:
            yield f"{name}:{statement.get('Sid', '')}", statement


def _findings() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    sources = [
        ("session", _session_statements()),
        ("customer", _customer_statements()),
        ("template", _template_statements("template.yaml", {})),
        ("template", _template_statements("forwarder.yaml", {"HubRegion": REGION, "HubAccountId": ACCOUNT})),
    ]
    for document, statements in sources:
        for where, statement in statements:
            policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
            for finding in parliament.analyze_policy_string(policy).findings:
                found.add((document, where, str(finding.issue)))
    return found


def test_every_policy_finding_is_justified_and_every_justification_still_found() -> None:
    found = _findings()
    unjustified = sorted(found - set(JUSTIFIED))
    assert not unjustified, unjustified
    stale = sorted(set(JUSTIFIED) - found)
    assert not stale, f"no longer found; drop the reason: {stale}"


def test_the_linter_finds_what_the_session_policy_was_before_scoping() -> None:
    """The linter is not blind: the AttachUserPolicy and kms:PutKeyPolicy on "*" this issue scoped are flagged."""
    before = {"Effect": "Allow", "Action": ["iam:AttachUserPolicy", "kms:PutKeyPolicy"], "Resource": "*"}
    issues = {
        str(f.issue)
        for f in parliament.analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [before]})).findings
    }
    assert "RESOURCE_STAR" in issues
