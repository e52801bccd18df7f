#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and the environment.

Context keys (cdk.json or ``-c key=value``): ``region``, ``pipelineName``,
``retainData``, ``logRetentionDays``, ``notificationEmail``, ``retrainSchedule``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.pipeline.catalog import IMAGE_ACCOUNTS
from stacks.config import PipelineSettings, SettingsError
from stacks.nova_stack import NovaCustomizationStack


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


def settings_from_context(app: cdk.App) -> PipelineSettings:
    """Read and validate every context value once."""
    ctx = app.node.try_get_context
    region = ctx("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    if region not in IMAGE_ACCOUNTS:
        raise SettingsError(
            f"region={region!r}: Nova customization images are published in {sorted(IMAGE_ACCOUNTS)} only"
        )
    return PipelineSettings(
        pipeline_name=ctx("pipelineName") or "nova",
        region=region,
        # The account stays unresolved (an environment-agnostic template) unless the CLI supplies it.
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
        retain_data=_bool(ctx("retainData") if ctx("retainData") is not None else True),
        log_retention_days=int(ctx("logRetentionDays") or 90),
        notification_email=ctx("notificationEmail") or None,
        retrain_schedule=ctx("retrainSchedule") or None,
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
