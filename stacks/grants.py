"""Least-privilege grants with explicit actions, and the resource ARNs they are scoped to.

CDK's ``bucket.grant_read`` expands to wildcard actions (``s3:GetObject*``,
``s3:List*``); these helpers name each action and scope object access to a
key prefix, so every remaining wildcard is an object-key pattern.
"""

from __future__ import annotations

from aws_cdk import Arn, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn


def grant_object_read(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """Read objects (and their versions) under ``prefix`` and list that prefix."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:GetObject", "s3:GetObjectVersion"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
    )
    _grant_list(grantee, bucket, prefix)


def grant_object_write(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """Write objects under ``prefix`` (including multipart uploads)."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:PutObject", "s3:AbortMultipartUpload"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
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


def state_machine_name(state_machine: sfn.IStateMachine) -> str:
    """The state machine's name (a token for one defined in this app)."""
    if isinstance(state_machine, sfn.StateMachine):
        return state_machine.state_machine_name
    return Arn.split(state_machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name or ""


def executions_arn(state_machine: sfn.IStateMachine) -> str:
    """``arn:...:execution:<state machine name>:*``: every execution of this one state machine."""
    return Stack.of(state_machine).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name(state_machine)}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
