"""Least-privilege grants with explicit actions, and the resource ARNs they are scoped to.

CDK's ``bucket.grant_read`` expands to wildcard actions (``s3:GetObject*``,
``s3:List*``); these helpers name each action and scope object access to a
key prefix, so every remaining wildcard is an object-key pattern.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3


def grant_object_read(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, *, keys: str = "*") -> None:
    """Read objects (and their versions) under ``prefix`` whose key continues with the pattern ``keys``, and
    list that prefix (so a missing object reads as missing, not as access denied)."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:GetObject", "s3:GetObjectVersion"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}{keys}")],
    )
    _grant_list(grantee, bucket, prefix)


def grant_object_write(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, *, keys: str = "*") -> None:
    """Write objects (including multipart uploads) under ``prefix`` whose key continues with the pattern ``keys``."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:PutObject", "s3:AbortMultipartUpload"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}{keys}")],
    )


def grant_object_delete(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """Delete objects under ``prefix``."""
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["s3:DeleteObject"], resource_arns=[bucket.arn_for_objects(f"{prefix}*")]
    )


def _grant_list(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:ListBucket"],
        resource_arns=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None,
    )


def grant_key_use(grantee: iam.IGrantable, key: kms.IKey) -> None:
    """Encrypt and decrypt objects with the project key (S3 bucket keys need both)."""
    key.grant(grantee, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


# What Bedrock needs to encrypt an imported custom model with a customer-managed key
# (docs/contracts/bedrock.md): validate the key, create a grant for bedrock.amazonaws.com,
# and store and check a ciphertext that proves the caller may use the key.
BEDROCK_MODEL_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant")


def grant_key_use_by_bedrock(grantee: iam.IGrantable, key: kms.IKey) -> None:
    """Let Bedrock, in this region and on ``grantee``'s behalf, encrypt an imported custom model with ``key``."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(BEDROCK_MODEL_KEY_ACTIONS),
        resource_arns=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"bedrock.{Aws.REGION}.amazonaws.com"}},
    )


# This account's on-demand custom-model deployments in the region (their ids are service-generated).
CUSTOM_MODEL_DEPLOYMENTS = f"arn:aws:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:custom-model-deployment/*"


def model_customization_jobs(stack: Stack) -> str:
    """``arn:<partition>:bedrock:<region>:<account>:model-customization-job/*``: this account's jobs in the region.

    The source ARN Bedrock presents when a customization job assumes the customization role or calls a grader.
    """
    return stack.format_arn(
        service="bedrock",
        resource="model-customization-job",
        resource_name="*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
