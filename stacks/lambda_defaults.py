"""Shared Lambda defaults: runtime, architecture, code asset, dependency layer, logging.

Every function of the project is a :class:`ProjectFunction`, so the defaults
(arm64, the newest Python runtime, JSON logs with a retention period, X-Ray,
a role of its own that may only write its own log group) live in one place.
The code asset is the repository's ``lambdas/`` package, so a handler is named
exactly as it is imported locally, e.g. ``lambdas.reward.handler.lambda_handler``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.common.metric_names import NAMESPACE
from stacks.nag import acknowledge, arn_of

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_DIR = REPO_ROOT / ".build" / "layer"

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = NAMESPACE

# Only the runtime package goes into the asset; caches and local-only files stay out.
_CODE_EXCLUDES = [
    "*",
    "!lambdas",
    "!lambdas/**",
    "**/__pycache__",
    "**/*.pyc",
    "lambdas/requirements.txt",
]


class LayerNotBuiltError(RuntimeError):
    """The dependency layer folder is missing: run ``make layer`` first."""


def lambda_code() -> lambda_.Code:
    """The project's Lambda code asset (shared by every function)."""
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=_CODE_EXCLUDES, ignore_mode=IgnoreMode.GLOB)


def dependency_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The stack's single dependency layer (Powertools, pydantic, PyYAML, a recent boto3)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("DependencyLayer")
    if isinstance(existing, lambda_.LayerVersion):
        return existing
    if not (LAYER_DIR / "python").is_dir():
        raise LayerNotBuiltError(
            f"{LAYER_DIR / 'python'} does not exist: run `make layer` (it installs "
            "lambdas/requirements.txt for arm64 / CPython 3.14) before synthesizing"
        )
    return lambda_.LayerVersion(
        stack,
        "DependencyLayer",
        code=lambda_.Code.from_asset(str(LAYER_DIR)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="Powertools, pydantic, PyYAML and boto3 for the Nova customization functions",
    )


class ProjectFunction(Construct):
    """A Lambda function with the project's defaults and a least-privilege role.

    The role starts with nothing but write access to the function's own log
    group; callers grant what the function needs (``grant_*`` on resources or
    ``add_to_role_policy``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        service_name: str,
        log_retention: logs.RetentionDays,
        environment: dict[str, str] | None = None,
        timeout: Duration | None = None,
        memory_size_mb: int = 512,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {description}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:*"],
            )
        )
        env = {
            "POWERTOOLS_SERVICE_NAME": service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        env.update(environment or {})
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_code(),
            layers=[dependency_layer(self)],
            description=description,
            environment=env,
            timeout=timeout or Duration.seconds(60),
            memory_size=memory_size_mb,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            # A published version (current_version) outlives the next deploy: an execution that started
            # on it keeps invoking it.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.RETAIN),
        )
        # Tracing adds xray:PutTraceSegments/PutTelemetryRecords on "*" to the role's policy.
        acknowledge(
            self.role,
            "IAM5",
            "X-Ray trace segments and telemetry have no resource-level permissions",
            "Resource::*",
        )
        acknowledge(
            self.role,
            "IAM5",
            "The function writes log streams it creates at run time in its own log group",
            f"Resource::{arn_of(self.log_group)}:*",
        )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn
