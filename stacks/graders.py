"""Graders: one reward Lambda per grader preset shipped in ``lambdas/reward/presets`` and per custom
grader module in ``lambdas/reward/custom`` (same naming, permissions and settings).

A custom module with its own ``requirements.txt`` gets a layer of its own with those packages,
built without Docker by ``make layer`` (``pip install --target`` with the Lambda platform flags)
into ``.build/custom/<module>/python``.

Nova RFT training jobs, RFT evaluation jobs and Bedrock RFT invoke these
functions synchronously. The construct id starts with ``SageMaker`` so each
generated function name contains it (the SageMaker managed policies and the
HyperPod docs expect it) without a hard-coded physical name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.common import env_names
from lambdas.reward.custom import requirements_file
from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import list_graders, load_grader
from stacks.grants import model_customization_jobs
from stacks.lambda_defaults import ARCHITECTURE, REPO_ROOT, RUNTIME, LayerNotBuiltError, ProjectFunction

CUSTOM_LAYERS_DIR = REPO_ROOT / ".build" / "custom"

# Graders answer in milliseconds; the LLM judge needs Bedrock round trips, bounded per batch.
GRADER_TIMEOUT = Duration.minutes(5)
# Sized for CPU, not RAM: grading a 512-rollout batch peaks at ~26 MB resident
# (python benchmarks/bench_grader_memory.py), but Lambda allots CPU in proportion to
# memory and reaches one full vCPU at 1,769 MB. Grading is single-threaded and the
# GPUs wait on every batch, so less would slow training and more would buy nothing.
GRADER_MEMORY_MB = 1769


def nested_values(spec: object, grader_type: str, key: str) -> Iterator[str]:
    """The string ``key`` of every ``grader_type`` grader nested anywhere in ``spec``."""
    if isinstance(spec, dict):
        if spec.get("type") == grader_type and isinstance(spec.get(key), str):
            yield spec[key]
        for value in spec.values():
            yield from nested_values(value, grader_type, key)
    elif isinstance(spec, list):
        for value in spec:
            yield from nested_values(value, grader_type, key)


def judge_model_ids(spec: object) -> Iterator[str]:
    """Model ids of every ``llm_judge`` grader nested anywhere in ``spec``."""
    return nested_values(spec, "llm_judge", "model_id")


def _judge_model_arns(model_id: str) -> list[str]:
    """ARNs Converse needs for ``model_id``: the model itself, or a cross-region profile and its models."""
    geo, _, base = model_id.partition(".")
    if geo in {"us", "eu", "apac", "global"} and base:
        return [
            f"arn:aws:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}",
            f"arn:aws:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:aws:bedrock:{Aws.REGION}::foundation-model/{model_id}"]


def custom_dependency_layer(scope: Construct, module: str) -> lambda_.ILayerVersion | None:
    """The layer holding a custom grader module's own requirements, or None when it declares none."""
    requirements = requirements_file(module)
    if requirements is None:
        return None
    built = CUSTOM_LAYERS_DIR / module / "python"
    if not built.is_dir():
        raise LayerNotBuiltError(
            f"{built} does not exist: run `make layer` (it installs {requirements.relative_to(REPO_ROOT)} "
            "for arm64 / CPython 3.14) before synthesizing"
        )
    return lambda_.LayerVersion(
        scope,
        f"Dependencies{_pascal(module)}",
        code=lambda_.Code.from_asset(str(built.parent)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"Requirements of the custom grader module {module}",
    )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


class Graders(Construct):
    """Reward functions by grader name (preset or custom module), invokable by ``invokers`` and by Bedrock.

    ``invokers`` are the roles that call the graders: the SageMaker execution role (RFT training and
    evaluation jobs) and the Bedrock customization role (Bedrock RFT jobs call the grader as that role).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        invokers: Sequence[iam.IGrantable],
        log_retention: logs.RetentionDays,
        presets: list[str] | None = None,
        reserved_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.IFunction] = {}
        for preset in presets if presets is not None else list_graders():
            # Compiling the spec here makes a broken preset or module fail synthesis, not a training job.
            spec = load_grader(preset).spec
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
            for module in sorted(set(nested_values(spec, "python", "module"))):
                layer = custom_dependency_layer(grader, module)
                if layer is not None:
                    grader.function.add_layers(layer)
            # The unqualified ARN only: grant_invoke would also allow every version and alias (":*").
            for invoker in invokers:
                iam.Grant.add_to_principal(
                    grantee=invoker,
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
