"""Graders: one reward Lambda per grader preset shipped in ``lambdas/reward/presets``.

Nova RFT training jobs, RFT evaluation jobs and Bedrock RFT invoke these
functions synchronously. The construct id starts with ``SageMaker`` so each
generated function name contains it (the SageMaker managed policies and the
HyperPod docs expect it) without a hard-coded physical name.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.lambda_defaults import REPO_ROOT, ProjectFunction

PRESETS_DIR = REPO_ROOT / "lambdas" / "reward" / "presets"
# Graders answer in milliseconds; the LLM judge needs Bedrock round trips, bounded per batch.
GRADER_TIMEOUT = Duration.minutes(5)
GRADER_MEMORY_MB = 512


def shipped_presets(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """Names of the grader presets shipped with the project, sorted."""
    return sorted(p.stem for p in presets_dir.glob("*.json"))


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
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.IFunction] = {}
        for preset in presets if presets is not None else shipped_presets():
            grader = ProjectFunction(
                self,
                _pascal(preset),
                handler="lambdas.reward.handler.lambda_handler",
                description=f"Nova RFT reward function ({preset} grader)",
                service_name="reward",
                log_retention=log_retention,
                environment={"GRADER_PRESET": preset},
                timeout=GRADER_TIMEOUT,
                memory_size_mb=GRADER_MEMORY_MB,
            )
            grader.function.grant_invoke(sagemaker_role)
            # Bedrock RFT (CreateModelCustomizationJob) calls the grader on this account's behalf only.
            grader.function.add_permission(
                "InvokeByBedrock",
                principal=iam.ServicePrincipal("bedrock.amazonaws.com"),
                source_account=Aws.ACCOUNT_ID,
            )
            self.functions[preset] = grader.function
