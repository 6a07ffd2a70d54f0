"""The self-service notebook product of seed 003, planned without AWS: its template, its launch role.

Pure: no clock, no boto3. The template is shipped in the layer, versioned by its file name
(`notebook-v1.yaml`); `render` fills one account's subnet, VPC and vault key in as the *only* allowed values
of their parameters, so an analyst launching the product chooses the size and the volume, nothing else.

The launch role (`launch_role_policy`) is what Service Catalog assumes to launch and terminate the product:
unlike seed 003's (`iam:*`, `s3:*`, `ec2:*`, `kms:*` on `*`), it may create and delete only this product's
resources, pass only the notebook's own role (the path `mlplane-sc-notebook`) and only to SageMaker, create a
notebook only with no direct internet access, no root access, in the account's subnets and encrypted with the
vault key (SageMaker's own condition keys on CreateNotebookInstance), and delete only what a Service Catalog
launch created (`aws:ResourceTag/aws:servicecatalog:provisionedProductArn` present). tests/module/service_catalog
proves every call a launch and a termination make allowed by it, and every action in it used.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

TEMPLATE_VERSION = "v1"
TEMPLATE_FILE = f"notebook-{TEMPLATE_VERSION}.yaml"
NOTEBOOK_ROLE_PATH = "/mlplane-sc-notebook/"
LAUNCH_ROLE_NAME = "mlplane-sc-launch"
INSTANCE_TYPES = ("ml.t3.medium", "ml.t3.large", "ml.t3.xlarge", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge")
"""The sizes of the shipped template (`mlplane.config.NOTEBOOK_SIZES`, the default setting, is the same)."""
_SIZES = re.compile(
    r"^(  InstanceType:\n    Type: String\n    Description: [^\n]*\n)"
    r"    Default: [^\n]*\n    AllowedValues:\n(?:      - [^\n]*\n)+",
    re.MULTILINE,
)
PROVISIONED_TAG = "aws:servicecatalog:provisionedProductArn"
"""Service Catalog tags each launch's stack (CloudFormation propagates it to the resources) with this key."""


def template_text() -> str:
    """The shipped template, byte for byte."""
    return resources.files(__package__).joinpath(TEMPLATE_FILE).read_text(encoding="utf-8")


def render(*, subnet_id: str, vpc_id: str, kms_key_arn: str, instance_types: tuple[str, ...] = INSTANCE_TYPES) -> str:
    """The template for one account: its subnet, VPC and key as the default and only allowed value; the
    configured sizes as the size's allowed values (the first is the default)."""
    text = template_text()
    sizes = "".join(f"      - {size}\n" for size in instance_types)
    text, found = _SIZES.subn(
        lambda m: f"{m.group(1)}    Default: {instance_types[0]}\n    AllowedValues:\n{sizes}", text
    )
    if found != 1:
        raise ValueError(f"{TEMPLATE_FILE}: parameter InstanceType not found once")
    for name, value in (("SubnetId", subnet_id), ("VpcId", vpc_id), ("KmsKeyId", kms_key_arn)):
        header = re.compile(rf"^  {name}:\n    Type: String\n", re.MULTILINE)
        if len(header.findall(text)) != 1:
            raise ValueError(f"{TEMPLATE_FILE}: parameter {name} not found once")
        text = header.sub(
            f"  {name}:\n    Type: String\n    Default: {value}\n    AllowedValues:\n      - {value}\n", text, count=1
        )
    return text


def launch_role_trust(account_id: str) -> dict[str, Any]:
    """Only Service Catalog, and only for this account's launches, assumes the launch role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "servicecatalog.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def launch_role_policy(
    *,
    account_id: str,
    region: str,
    vpc_id: str,
    subnet_ids: list[str],
    kms_key_arn: str,
    instance_types: tuple[str, ...] = INSTANCE_TYPES,
    partition: str = "aws",
) -> dict[str, Any]:
    """What CloudFormation needs, as the launch role, to create and delete this product's resources."""
    here = f"{region}:{account_id}"
    notebook_roles = f"arn:{partition}:iam::{account_id}:role{NOTEBOOK_ROLE_PATH}*"
    notebooks = f"arn:{partition}:sagemaker:{here}:notebook-instance/*"
    launched = {"Null": {f"aws:ResourceTag/{PROVISIONED_TAG}": "false"}}
    subnets = [f"arn:{partition}:ec2:{here}:subnet/{s}" for s in subnet_ids]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Stacks",
                "Effect": "Allow",
                "Action": ["cloudformation:CreateStack", "cloudformation:DeleteStack", "cloudformation:DescribeStacks"],
                "Resource": f"arn:{partition}:cloudformation:{here}:stack/SC-{account_id}-pp-*/*",
            },
            # Service Catalog reads its copy of the template "in a service-owned Amazon S3 bucket" as the launch role
            # (Service Catalog administrator guide, "Launch constraints" > "Configuring a launch role",
            # docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html): no bucket ARN of the
            # account can scope it, the tag on Service Catalog's copies does. The guide's getting started, "Step 7:
            # Grant end users access to the portfolio" (getstarted-deploy): "When you configure a launch role for a
            # launch constraint, you must use this string for s3:GetObject:
            # "s3:ExistingObjectTag/servicecatalog:provisioning":"true"", with Resource "*".
            {
                "Sid": "TemplateCopy",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}},
            },
            {
                "Sid": "NotebookRole",
                "Effect": "Allow",
                "Action": [
                    "iam:CreateRole",
                    "iam:TagRole",
                    "iam:GetRole",
                    "iam:ListRolePolicies",
                    "iam:ListAttachedRolePolicies",
                    "iam:DeleteRole",
                ],
                "Resource": notebook_roles,
            },
            {
                "Sid": "PassNotebookRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": notebook_roles,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "SecurityGroupCreate",
                "Effect": "Allow",
                "Action": "ec2:CreateSecurityGroup",
                "Resource": [
                    f"arn:{partition}:ec2:{here}:vpc/{vpc_id}",
                    f"arn:{partition}:ec2:{here}:security-group/*",
                ],
            },
            {
                "Sid": "TagOnCreate",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
            },
            {
                "Sid": "LaunchedOnly",
                "Effect": "Allow",
                "Action": [
                    "ec2:DeleteSecurityGroup",
                    "sagemaker:StopNotebookInstance",
                    "sagemaker:DeleteNotebookInstance",
                ],
                "Resource": [f"arn:{partition}:ec2:{here}:security-group/*", notebooks],
                "Condition": launched,
            },
            {
                "Sid": "Notebook",
                "Effect": "Allow",
                "Action": "sagemaker:CreateNotebookInstance",
                "Resource": notebooks,
                # CreateNotebookInstance's condition keys (Service Authorization Reference, "Actions, resources, and
                # condition keys for Amazon SageMaker AI"): AcceleratorTypes, DirectInternetAccess, InstanceTypes,
                # RootAccess, VolumeKmsKey (type ARN: an Arn operator), VpcSecurityGroupIds, VpcSubnets, on the
                # required resource notebook-instance.
                "Condition": {
                    "StringEquals": {"sagemaker:DirectInternetAccess": "Disabled", "sagemaker:RootAccess": "Disabled"},
                    "ArnEquals": {"sagemaker:VolumeKmsKey": kms_key_arn},
                    "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(instance_types)},
                    "ForAnyValue:StringEquals": {"sagemaker:VpcSubnets": subnet_ids},
                },
            },
            {
                "Sid": "NotebookTags",
                "Effect": "Allow",
                "Action": ["sagemaker:AddTags", "sagemaker:DescribeNotebookInstance"],
                "Resource": notebooks,
            },
            {
                "Sid": "NotebookNetwork",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterface",
                "Resource": [
                    *subnets,
                    f"arn:{partition}:ec2:{here}:security-group/*",
                    f"arn:{partition}:ec2:{here}:network-interface/*",
                ],
            },
            {
                "Sid": "NotebookInterface",
                "Effect": "Allow",
                "Action": ["ec2:AttachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute"],
                "Resource": f"arn:{partition}:ec2:{here}:network-interface/*",
            },
            {
                "Sid": "VaultKeyGrant",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": kms_key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Sid": "Reads",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInternetGateways",
                ],
                "Resource": "*",
            },
        ],
    }
