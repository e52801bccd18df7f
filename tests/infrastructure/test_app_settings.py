"""app.py reads context once and rejects bad values with a message naming the key."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from offline.synth import Synthesized, synthesize
from stacks.config import PipelineSettings, SettingsError
from stacks.summary import summarize


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pipeline_name": "Bad Name"}, "pipelineName='Bad Name'"),
        ({"notification_email": "not-an-email"}, "notificationEmail='not-an-email'"),
        ({"retrain_schedule": "every monday"}, "retrainSchedule='every monday'"),
        ({"log_retention_days": 0}, "logRetentionDays=0"),
        ({"grader_reserved_concurrency": -1}, "graderReservedConcurrency=-1"),
        ({"stage_reserved_concurrency": 1001}, "stageReservedConcurrency=1001"),
        ({"stage_reserved_concurrency": True}, "stageReservedConcurrency=True"),
        ({"model_retention": 0}, "modelRetention=0: keep at least 1 model"),
    ],
)
def test_invalid_settings_name_the_context_key(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        PipelineSettings(**kwargs)


def test_an_unsupported_region_is_rejected_before_synthesis() -> None:
    from app import build_app

    with pytest.raises(SettingsError, match="region='eu-west-1'"):
        build_app(context={"region": "eu-west-1"})


def test_context_values_from_cdk_json_are_applied() -> None:
    from aws_cdk import App

    from app import default_context, settings_from_context

    settings = settings_from_context(App(context={**default_context(), "pipelineName": "legal-agent"}))
    assert settings.pipeline_name == "legal-agent"
    assert settings.region == "us-east-1"
    assert settings.notification_email is None  # empty string in cdk.json means "no subscription"
    assert settings.retain_data is True


def _settings(**context: object) -> PipelineSettings:
    from aws_cdk import App

    from app import default_context, settings_from_context

    return settings_from_context(App(context={**default_context(), **context}))


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("true", True), ("false", False)])
def test_retain_data_is_a_json_boolean_or_the_cli_strings_true_and_false(value: object, expected: bool) -> None:
    assert _settings(retainData=value).retain_data is expected


@pytest.mark.parametrize("value", ["ture", "False", "no", "0", "1", "yes", "", 0, 1])
def test_a_mistyped_boolean_stops_synthesis_naming_the_key_the_value_and_what_is_allowed(value: object) -> None:
    # Given a value that is not exactly true or false (it used to mean false, i.e. delete the buckets)
    # When the app reads the context
    # Then synthesis stops with the key, the value as given, and the values allowed
    with pytest.raises(SettingsError, match=rf"retainData={re.escape(repr(value))}: not a boolean; use true or false"):
        _settings(retainData=value)


@pytest.mark.parametrize(("value", "expected"), [(30, 30), ("30", 30), ("365", 365)])
def test_log_retention_is_a_json_integer_or_a_string_of_digits(value: object, expected: int) -> None:
    assert _settings(logRetentionDays=value).log_retention_days == expected


@pytest.mark.parametrize("value", ["30days", "30.5", " 30", "", "-7", 30.5, True])
def test_a_bad_number_stops_synthesis_naming_the_key_the_value_and_what_is_allowed(value: object) -> None:
    with pytest.raises(
        SettingsError, match=rf"logRetentionDays={re.escape(repr(value))}: not a whole number; use a JSON integer"
    ):
        _settings(logRetentionDays=value)


def test_the_run_policy_comes_from_context_and_a_bad_one_stops_synthesis_naming_the_key() -> None:
    policy = _settings(runPolicy='{"maxUsdPerRun": 800, "allowedInstanceTypes": ["ml.p5.48xlarge"]}').run_policy
    assert policy.maxUsdPerRun == 800 and policy.allowedInstanceTypes == ("ml.p5.48xlarge",)
    assert policy.mustBeatDeployed is True  # keys left out take the defaults
    with pytest.raises(SettingsError, match=r"runPolicy: not a JSON object \(1e309 is too large for a finite number\)"):
        _settings(runPolicy='{"maxUsdPerRun": 1e309}')
    with pytest.raises(SettingsError, match=r"runPolicy.mustBeatDeployed"):
        _settings(runPolicy={"mustBeatDeployed": "ture"})


def test_every_bad_context_value_is_reported_at_once() -> None:
    from app import build_app

    with pytest.raises(SettingsError) as raised:
        build_app(context={"retainData": "ture", "logRetentionDays": "ninety", "region": "eu-west-1"})
    message = str(raised.value)
    assert "retainData='ture'" in message and "logRetentionDays='ninety'" in message and "region='eu-west-1'" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retain_data": "false"}, "retainData='false': not a boolean"),
        ({"log_retention_days": "90"}, "logRetentionDays='90'"),
    ],
)
def test_settings_accept_typed_values_only(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        PipelineSettings(**kwargs)


# Deliberate departures from aws-cdk-lib's recommended feature flags, each with its reason.
FLAG_CHOICES = {
    # The Nova images, escrow buckets and on-demand deployments exist in commercial regions only.
    "@aws-cdk/core:target-partitions": ["aws"],
}


def _recommended_feature_flags() -> dict:
    """The flags aws-cdk-lib recommends for new projects (what `cdk init` writes), from the installed library."""
    import aws_cdk

    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.load(member)


def test_cdk_json_sets_every_recommended_feature_flag() -> None:
    from app import default_context

    # Given the installed aws-cdk-lib's recommendations and the app's context
    recommended = _recommended_feature_flags()
    context = default_context()
    assert len(recommended) > 50
    # Then each flag is set (an unset one makes the CLI print "feature flags are not configured" and leaves
    # the app on old behaviour), to the recommended value unless FLAG_CHOICES says why not
    expected = {**recommended, **FLAG_CHOICES}
    wrong = {flag: context.get(flag, "<unset>") for flag, value in expected.items() if context.get(flag) != value}
    assert not wrong, f"set these in cdk.json: { {flag: expected[flag] for flag in wrong} }"


def test_summary_lists_the_stack_and_its_resource_types(synthesized: Synthesized) -> None:
    text = summarize(synthesized.outdir)
    assert text.startswith("Stack NovaCustomization (aws://unknown-account/us-east-1)")
    assert "AWS::S3::Bucket" in text and "AWS::KMS::Key" in text
    assert "- Validate run (Task)" in text
    assert "  - Run SFT training job (Task)" in text  # a branch of a Parallel, indented beneath it


def test_the_stack_outputs_what_a_user_needs_after_deploying(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    for name in (
        "DataBucketName",
        "ArtifactsBucketName",
        "StateMachineArn",
        "NotificationTopicArn",
        "GraderFunctionClassification",
        "GraderFunctionNumeric",
        "GraderFunctionToolCalling",
    ):
        assert name in outputs, name
        assert outputs[name]["Description"]
    state_machines = synthesized.resources("AWS::StepFunctions::StateMachine")
    assert outputs["StateMachineArn"]["Value"]["Ref"] in state_machines


def test_the_app_is_synthesized_once_per_process_and_context(synthesized: Synthesized) -> None:
    assert synthesize() is synthesized
    without_retention = synthesize(context={"retainData": False})
    assert without_retention is synthesize(context={"retainData": False})
    assert without_retention.outdir != synthesized.outdir
