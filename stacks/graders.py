"""Graders: one reward Lambda per grader preset shipped in ``lambdas/reward/presets``.

Nova RFT training jobs, RFT evaluation jobs and Bedrock RFT invoke these
functions synchronously. The construct id starts with ``SageMaker`` so each
generated function name contains it (the SageMaker managed policies and the
HyperPod docs expect it) without a hard-coded physical name.
"""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.common import env_names
from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import list_presets, load_preset
from stacks.lambda_defaults import ProjectFunction

# Graders answer in milliseconds; the LLM judge needs Bedrock round trips, bounded per batch.
GRADER_TIMEOUT = Duration.minutes(5)
# Sized for CPU, not RAM: grading a 512-rollout batch peaks at ~26 MB resident
# (python benchmarks/bench_grader_memory.py), but Lambda allots CPU in proportion to
# memory and reaches one full vCPU at 1,769 MB. Grading is single-threaded and the
# GPUs wait on every batch, so less would slow training and more would buy nothing.
GRADER_MEMORY_MB = 1769


def judge_model_ids(spec: object) -> Iterator[str]:
    """Model ids of every ``llm_judge`` grader nested anywhere in ``spec``."""
    if isinstance(spec, dict):
        if spec.get("type") == "llm_judge" and isinstance(spec.get("model_id"), str):
            yield spec["model_id"]
        for value in spec.values():
            yield from judge_model_ids(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from judge_model_ids(value)


def _judge_model_arns(model_id: str) -> list[str]:
    """ARNs Converse needs for ``model_id``: the model itself, or a cross-region profile and its models."""
    geo, _, base = model_id.partition(".")
    if geo in {"us", "eu", "apac", "global"} and base:
        return [
            f"arn:aws:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}",
            f"arn:aws:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:aws:bedrock:{Aws.REGION}::foundation-model/{model_id}"]


def model_customization_jobs(stack: Stack) -> str:
    """``arn:<partition>:bedrock:<region>:<account>:model-customization-job/*``: this account's jobs in the region."""
    return stack.format_arn(
        service="bedrock",
        resource="model-customization-job",
        resource_name="*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


class Graders(Construct):
    """Reward functions by preset name, invokable by the SageMaker role and by Bedrock."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        sagemaker_role: iam.IRole,
        log_retention: logs.RetentionDays,
        presets: list[str] | None = None,
        reserved_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.IFunction] = {}
        for preset in presets if presets is not None else list_presets():
            # Compiling the spec here makes a broken preset fail synthesis, not a training job.
            spec = load_preset(preset).spec
            compile_spec(spec, name=preset)
            grader = ProjectFunction(
                self,
                _pascal(preset),
                handler="lambdas.reward.handler.lambda_handler",
                description=f"Nova RFT reward function ({preset} grader)",
                service_name="reward",
                log_retention=log_retention,
                environment={env_names.GRADER_PRESET: preset},
                timeout=GRADER_TIMEOUT,
                memory_size_mb=GRADER_MEMORY_MB,
                # 0: no reservation (Lambda's 0 would throttle every call).
                reserved_concurrency=reserved_concurrency or None,
            )
            # The unqualified ARN only: grant_invoke would also allow every version and alias (":*").
            iam.Grant.add_to_principal(
                grantee=sagemaker_role,
                actions=["lambda:InvokeFunction"],
                resource_arns=[grader.function.function_arn],
            )
            # Bedrock RFT (CreateModelCustomizationJob) calls the grader for this account's model
            # customization jobs only: SourceAccount and SourceArn together guard against a confused deputy.
            grader.function.add_permission(
                "InvokeByBedrock",
                principal=iam.ServicePrincipal("bedrock.amazonaws.com"),
                source_account=Aws.ACCOUNT_ID,
                source_arn=model_customization_jobs(Stack.of(self)),
            )
            judge_arns = [arn for model_id in judge_model_ids(spec) for arn in _judge_model_arns(model_id)]
            if judge_arns:
                grader.role.add_to_policy(iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=judge_arns))
            self.functions[preset] = grader.function
