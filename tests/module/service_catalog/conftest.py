"""Fixtures of the Service Catalog tests: moto with the sandbox's interceptor, a member account with a VPC, a
private subnet, a vault key, the analysts' role and the product's launch role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.iam.models import iam_backends

from mlplane import aws
from mlplane.config import reset_settings
from mlplane.modules.service_catalog import product
from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import interceptor, recording
from mlplane_sandbox.emulators import cloudformation, service_catalog
from tests.module.moto_account import use_fake_credentials

REGION = "eu-west-1"
MEMBER = "111111111111"
HUB = "123456789012"
ANALYST_ROLE = "DataAnalyst"
TEMPLATE_BUCKET = "mlplane-product-templates-123456789012"
TEMPLATE_KEY = f"service-catalog/{MEMBER}/{product.TEMPLATE_FILE}"


@dataclass(frozen=True)
class Account:
    vpc_id: str
    subnet_id: str
    key_arn: str
    launch_role_arn: str
    template_url: str

    def launch_policy(self) -> dict[str, Any]:
        return product.launch_role_policy(
            account_id=MEMBER, region=REGION, vpc_id=self.vpc_id, subnet_ids=[self.subnet_id], kms_key_arn=self.key_arn
        )


def _trust_hub() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def session_as(role: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/{role}", RoleSessionName="test"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    use_fake_credentials(monkeypatch, REGION)
    clock_module.reset()
    recording.reset()
    service_catalog.reset()
    cloudformation.reset()
    with mock_aws():
        interceptor.install()
        try:
            backend = iam_backends[MEMBER]["aws"]
            for role in ("AWSControlTowerExecution", ANALYST_ROLE):
                backend.create_role(
                    role_name=role,
                    assume_role_policy_document=_trust_hub(),
                    path="/",
                    permissions_boundary=None,
                    description="",
                    tags=[],
                    max_session_duration="3600",
                )
            admin = session_as("AWSControlTowerExecution")
            ec2 = admin.client("ec2")
            vpc = ec2.create_vpc(CidrBlock="10.10.0.0/21")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.0.0/24")["Subnet"]["SubnetId"]
            key = admin.client("kms").create_key()["KeyMetadata"]["Arn"]
            # The module's launch role (its policy is the one under test), made directly in moto's backend.
            made = backend.create_role(
                role_name=product.LAUNCH_ROLE_NAME,
                assume_role_policy_document=json.dumps(product.launch_role_trust(MEMBER)),
                path="/",
                permissions_boundary=None,
                description="",
                tags=[],
                max_session_duration="3600",
            )
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=TEMPLATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_object(
                Bucket=TEMPLATE_BUCKET,
                Key=TEMPLATE_KEY,
                Body=product.render(subnet_id=subnet, vpc_id=vpc, kms_key_arn=key).encode(),
            )
            url = f"https://{TEMPLATE_BUCKET}.s3.{REGION}.amazonaws.com/{TEMPLATE_KEY}"
            yield Account(vpc, subnet, key, made.arn, url)
        finally:
            interceptor.uninstall()
    aws.reset()
    reset_settings()
