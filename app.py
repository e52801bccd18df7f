#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and the environment.

Context keys (cdk.json or ``-c key=value``): ``region``, ``pipelineName``,
``retainData``, ``logRetentionDays``, ``notificationEmail``, ``retrainSchedule``,
``modelRetention``, ``graderReservedConcurrency``, ``stageReservedConcurrency``, ``approval`` (``none`` or
``required``), ``approvalTimeoutHours``, ``runPolicy`` (a JSON object,
:class:`lambdas.pipeline.policy.RunPolicy`; with ``-c`` its JSON text), ``writers`` (a JSON object,
:func:`stacks.config.parse_writers`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.pipeline.catalog import IMAGE_ACCOUNTS
from lambdas.pipeline.policy import CONTEXT_KEY as RUN_POLICY_KEY
from lambdas.pipeline.policy import RunPolicy, RunPolicyError, parse_policy
from lambdas.pipeline.serving import DEFAULT_RETENTION
from stacks.config import (
    DEFAULT_APPROVAL_TIMEOUT_HOURS,
    DEFAULT_GRADER_RESERVED_CONCURRENCY,
    DEFAULT_STAGE_RESERVED_CONCURRENCY,
    PipelineSettings,
    SettingsError,
    parse_approval,
    parse_bool,
    parse_int,
    parse_writers,
)
from stacks.nova_stack import NovaCustomizationStack

T = TypeVar("T")


def settings_from_context(app: cdk.App) -> PipelineSettings:
    """Read and validate every context value once; one error lists every bad value.

    Booleans and numbers are parsed strictly (:func:`stacks.config.parse_bool`,
    :func:`stacks.config.parse_int`): an unset key takes its default, a value that is not
    exactly a boolean or a whole number stops synthesis.
    """
    ctx = app.node.try_get_context
    problems: list[str] = []

    def typed(key: str, parse: Callable[[str, object], T], default: T) -> T:
        value = ctx(key)
        if value is None:
            return default
        try:
            return parse(key, value)
        except SettingsError as error:
            problems.append(str(error))
            return default

    region = ctx("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    if region not in IMAGE_ACCOUNTS:
        problems.append(f"region={region!r}: Nova customization images are published in {sorted(IMAGE_ACCOUNTS)} only")
    retain_data = typed("retainData", parse_bool, True)
    log_retention_days = typed("logRetentionDays", parse_int, 90)
    model_retention = typed("modelRetention", parse_int, DEFAULT_RETENTION)
    grader_reserved = typed("graderReservedConcurrency", parse_int, DEFAULT_GRADER_RESERVED_CONCURRENCY)
    stage_reserved = typed("stageReservedConcurrency", parse_int, DEFAULT_STAGE_RESERVED_CONCURRENCY)
    approval_required = typed("approval", parse_approval, False)
    approval_timeout_hours = typed("approvalTimeoutHours", parse_int, DEFAULT_APPROVAL_TIMEOUT_HOURS)
    no_writers: dict[str, tuple[str, ...]] = {}
    writers = typed("writers", parse_writers, no_writers)
    run_policy = RunPolicy()
    if ctx(RUN_POLICY_KEY) is not None:
        try:
            run_policy = parse_policy(ctx(RUN_POLICY_KEY))
        except RunPolicyError as error:
            problems.append(str(error))
    if 0 < grader_reserved < run_policy.maxLambdaConcurrency:
        problems.append(
            f"runPolicy.maxLambdaConcurrency={run_policy.maxLambdaConcurrency} is above "
            f"graderReservedConcurrency={grader_reserved}: an RFT job could be throttled by its own grader"
        )
    if problems:
        raise SettingsError("invalid context: " + "; ".join(problems))
    return PipelineSettings(
        pipeline_name=ctx("pipelineName") or "nova",
        region=region,
        # The account stays unresolved (an environment-agnostic template) unless the CLI supplies it.
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
        retain_data=retain_data,
        log_retention_days=log_retention_days,
        model_retention=model_retention,
        notification_email=ctx("notificationEmail") or None,
        retrain_schedule=ctx("retrainSchedule") or None,
        grader_reserved_concurrency=grader_reserved,
        stage_reserved_concurrency=stage_reserved,
        run_policy=run_policy,
        writers=writers,
        approval_required=approval_required,
        approval_timeout_hours=approval_timeout_hours,
    )


CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def default_context() -> dict:
    """cdk.json's context, so ``python app.py`` and tests synthesize exactly what the CLI does.

    Values given on the CLI (``-c``) still win: the App applies them after these.
    """
    return json.loads(CDK_JSON.read_text())["context"]


def build_app(*, context: dict | None = None, outdir: str | None = None) -> cdk.App:
    """Build the app with the cdk-nag AwsSolutions validation plugin registered."""
    app = cdk.App(context={**default_context(), **(context or {})}, outdir=outdir)
    settings = settings_from_context(app)
    NovaCustomizationStack(
        app,
        "NovaCustomization",
        settings=settings,
        env=cdk.Environment(account=settings.account, region=settings.region),
        description="Amazon Nova customization pipeline: SFT, RFT, evaluation, Bedrock import and deployment",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    return app


if __name__ == "__main__":
    build_app().synth()
