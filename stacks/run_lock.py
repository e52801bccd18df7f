"""The run lock table: one item per pipeline, held by the execution that runs (lambdas/common/run_lock.py).

The state machine writes the item in its first state (``dynamodb:PutItem`` with a
condition), the notify function deletes it when the execution ends, and the trigger
reads it (and clears a lock whose execution has ended) before starting a run. The
table holds nothing but that item: it is destroyed with the stack.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from lambdas.common import run_lock


class RunLock(Construct):
    """An on-demand DynamoDB table keyed by pipeline name, encrypted, with point-in-time recovery."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=run_lock.KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def grant_take(self, grantee: iam.IGrantable) -> None:
        """Take the lock (the state machine's conditional PutItem)."""
        iam.Grant.add_to_principal(grantee=grantee, actions=["dynamodb:PutItem"], resource_arns=[self.table.table_arn])

    def grant_release(self, grantee: iam.IGrantable, *, read: bool = False) -> None:
        """Release a lock an ended execution holds (conditional DeleteItem); ``read`` adds the consistent GetItem."""
        actions = ["dynamodb:DeleteItem", *(["dynamodb:GetItem"] if read else [])]
        iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[self.table.table_arn])
