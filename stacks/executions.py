"""The executions of one state machine: their ARN pattern for IAM and how cdk-nag names it.

Works for a state machine defined in the app (its ``Name`` attribute) and for one
imported by ARN (``sfn.StateMachine.from_state_machine_arn``), whose name is read
from the ARN: the ``IStateMachine`` interface has no name.
"""

from __future__ import annotations

import json

from aws_cdk import Arn, ArnFormat, Aws, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn

from stacks.nag import acknowledge, arn_of, partition_of


def state_machine_name(state_machine: sfn.IStateMachine) -> str:
    """The state machine's name: its ``Name`` attribute when defined here, else the last part of its ARN."""
    if isinstance(state_machine, sfn.StateMachine):
        return state_machine.state_machine_name
    name = Arn.split(state_machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name
    if not name:
        raise ValueError(f"no state machine name in ARN {state_machine.state_machine_arn}")
    return name


def executions_arn(state_machine: sfn.IStateMachine) -> str:
    """``arn:...:execution:<state machine name>:*``: every execution of this one state machine."""
    return Stack.of(state_machine).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name(state_machine)}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def executions_finding(state_machine: sfn.IStateMachine) -> str:
    """How cdk-nag names the wildcard of :func:`executions_arn` in an IAM5 finding id."""
    stack = Stack.of(state_machine)
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    if isinstance(state_machine, sfn.StateMachine):
        name = arn_of(state_machine, "Name")
    else:
        name = state_machine_name(state_machine)
        if Token.is_unresolved(name):
            # An intrinsic (the name split out of a referenced ARN) appears as its compact JSON.
            name = json.dumps(stack.resolve(name), separators=(",", ":"))
    return f"Resource::arn:{partition_of(stack)}:states:{region}:{account}:execution:{name}:*"


def training_jobs_arn(pipeline_name: str) -> str:
    """``training-job/<pipeline>-*``: the pipeline's training jobs (names start with it, lambdas/pipeline/naming.py)."""
    return f"arn:aws:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:training-job/{pipeline_name}-*"


def acknowledge_training_jobs(role: iam.IRole, pipeline_name: str) -> None:
    """The cdk-nag reason for :func:`training_jobs_arn` on ``role``."""
    acknowledge(
        role,
        "IAM5",
        "Training job names are generated per run, stage and attempt under the pipeline-name prefix",
        f"Resource::arn:aws:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/{pipeline_name}-*",
    )
