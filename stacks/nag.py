"""Granular cdk-nag acknowledgements.

cdk-nag's validation plugin fails synthesis on any finding that is not
acknowledged on the construct that raised it. These helpers build the exact
finding ids (``AwsSolutions::AwsSolutions-IAM5[Resource::...]``) so every
acknowledgement names the single permission or setting it accepts, with a reason.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, CfnElement, Stack, Token, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *findings: str) -> None:
    """Acknowledge ``rule`` (e.g. ``IAM5``) on ``construct``, one id per finding (or the bare rule)."""
    ids = [f"AwsSolutions::AwsSolutions-{rule}[{f}]" for f in findings] or [f"AwsSolutions::AwsSolutions-{rule}"]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def arn_of(construct: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag renders ``Fn::GetAtt [<logical id>, <attribute>]`` of ``construct`` in a finding id."""
    default_child = construct.node.default_child
    element = default_child if isinstance(default_child, CfnElement) else construct
    if not isinstance(element, CfnElement):
        raise TypeError(f"{construct.node.path} is not a CloudFormation resource and has none as its default child")
    return f"<{Stack.of(construct).get_logical_id(element)}.{attribute}>"


def partition_of(construct: IConstruct) -> str:
    """How cdk-nag renders the partition of an ARN the stack formats (``Stack.format_arn``).

    With the ``@aws-cdk/core:enablePartitionLiterals`` flag and a known region the ARN holds the literal
    partition (``aws``); otherwise it holds ``{"Ref": "AWS::Partition"}``, which cdk-nag writes as a pseudo
    parameter.
    """
    partition = Stack.of(construct).partition
    return "<AWS::Partition>" if Token.is_unresolved(partition) else partition


def rendered_arn(arn: str) -> str:
    """How cdk-nag renders an ARN built from the pseudo parameters (``Aws.REGION``, ``Aws.ACCOUNT_ID``,
    ``Aws.PARTITION``) in a finding id, e.g. ``arn:aws:bedrock:<AWS::Region>:<AWS::AccountId>:custom-model/*``."""
    for token, name in ((Aws.REGION, "Region"), (Aws.ACCOUNT_ID, "AccountId"), (Aws.PARTITION, "Partition")):
        arn = arn.replace(token, f"<AWS::{name}>")
    return arn
