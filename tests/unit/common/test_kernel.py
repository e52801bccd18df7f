"""The shared kernel: AWS error classification, the bucket layout, the settings convention."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices

from lambdas.common import env_names, layout
from lambdas.common.aws_errors import error_code, is_access_denied, is_missing, is_precondition_failed
from lambdas.common.settings import ConfigurationError
from lambdas.notify.settings import NotifySettings
from lambdas.pipeline.environment import PipelineEnvironment, load_environment
from lambdas.trigger.settings import TriggerSettings


class FakeClientError(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}}


@pytest.mark.parametrize(
    "code", ["404", "NoSuchKey", "NoSuchVersion", "NotFound", "ResourceNotFoundException", "ExecutionDoesNotExist"]
)
def test_every_service_spelling_of_a_missing_object_is_missing(code: str) -> None:
    assert is_missing(FakeClientError(code))


def test_sagemaker_answers_a_missing_job_with_a_validation_error_that_says_not_found() -> None:
    assert is_missing(FakeClientError("ValidationException", "Requested resource not found"))
    assert not is_missing(FakeClientError("ValidationException", "1 validation error detected: TrainingJobName"))


def test_other_errors_are_not_missing() -> None:
    assert not is_missing(FakeClientError("AccessDenied"))
    assert not is_missing(ValueError("404"))
    assert error_code(ValueError("x")) is None
    assert is_access_denied(FakeClientError("403")) and not is_access_denied(FakeClientError("404"))
    assert is_precondition_failed(FakeClientError("PreconditionFailed"))
    assert not is_precondition_failed(FakeClientError("NoSuchKey"))


def test_the_artifacts_layout() -> None:
    assert layout.run_record_key("r1") == "runs/r1/run.json"
    assert layout.report_key("r1") == "runs/r1/report.html"
    assert layout.champion_key("nova") == "champions/nova.json"
    assert layout.recipe_key("r1", "sft") == "runs/r1/recipes/sft/recipe.yaml"
    assert layout.staged_eval_key("r1", "gen_qa.jsonl") == "runs/r1/inputs/eval/gen_qa.jsonl"
    assert all(key.startswith(layout.RUNS_PREFIX) for key in (layout.run_prefix("r"), layout.report_key("r")))


def test_every_settings_model_reads_the_shared_variable_names() -> None:
    for model in (PipelineEnvironment, NotifySettings, TriggerSettings):
        for field in model.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, str):
                names: list[object] = [alias]
            else:
                assert isinstance(alias, AliasChoices), (model.__name__, alias)
                names = list(alias.choices)
            declared = {value for name, value in vars(env_names).items() if name.isupper()}
            assert set(names) <= declared, (model.__name__, names)


def test_a_missing_variable_is_named_and_the_default_region_is_accepted() -> None:
    environ = {
        env_names.PIPELINE_NAME: "nova",
        env_names.DATA_BUCKET_NAME: "data",
        env_names.ARTIFACTS_BUCKET_NAME: "artifacts",
        env_names.BEDROCK_IMPORT_ROLE_ARN: "arn:aws:iam::123456789012:role/Import",
        env_names.MODEL_KMS_KEY_ARN: "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        env_names.GRADER_FUNCTIONS: '{"g": "arn"}',
        env_names.RUN_POLICY: "{}",
        env_names.AWS_DEFAULT_REGION: "us-west-2",
    }
    assert load_environment(environ).region == "us-west-2"
    del environ[env_names.AWS_DEFAULT_REGION], environ[env_names.ARTIFACTS_BUCKET_NAME]
    with pytest.raises(ConfigurationError, match="missing environment variables: ARTIFACTS_BUCKET_NAME, AWS_REGION"):
        load_environment(environ)
