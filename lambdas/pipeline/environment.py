"""The stage functions' settings (the convention of :mod:`lambdas.common.settings`).

Set by the Pipeline construct (``stacks/pipeline.py``) on every stage function:

- ``PIPELINE_NAME``: the pipeline's name (job name prefix, champion record key);
- ``DATA_BUCKET_NAME``: the bucket datasets must be in (under ``datasets/``);
- ``ARTIFACTS_BUCKET_NAME``: recipes, job outputs, run records, champion records;
- ``BEDROCK_IMPORT_ROLE_ARN``: the role Bedrock assumes to read checkpoints;
- ``MODEL_KMS_KEY_ARN``: the project's key, which encrypts the imported model (``modelKmsKeyArn``);
- ``GRADER_FUNCTIONS``: JSON object, grader preset name -> reward Lambda ARN;
- ``RUN_POLICY``: JSON object, the deployment's run policy (:class:`lambdas.pipeline.policy.RunPolicy`);
- ``MODEL_RETENTION``: how many of the newest custom models the pipeline keeps (default 2: the
  deployed one and the one ``rollback`` returns to; cdk.json context ``modelRetention``);
- ``AWS_REGION`` (set by Lambda; ``AWS_DEFAULT_REGION`` elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import AliasChoices, Field, field_validator

from lambdas.common import env_names
from lambdas.common.settings import ConfigurationError, FunctionSettings, load_settings
from lambdas.pipeline.policy import RunPolicy, parse_policy
from lambdas.pipeline.serving import DEFAULT_RETENTION

__all__ = ["ConfigurationError", "PipelineEnvironment", "load_environment"]


class PipelineEnvironment(FunctionSettings):
    pipeline_name: str = Field(validation_alias=env_names.PIPELINE_NAME, min_length=1)
    data_bucket: str = Field(validation_alias=env_names.DATA_BUCKET_NAME, min_length=3)
    artifacts_bucket: str = Field(validation_alias=env_names.ARTIFACTS_BUCKET_NAME, min_length=3)
    bedrock_import_role_arn: str = Field(
        validation_alias=env_names.BEDROCK_IMPORT_ROLE_ARN, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+"
    )
    # The pattern of CreateCustomModel's modelKmsKeyArn (botocore's KmsKeyArn shape): a key ARN, not an alias.
    model_kms_key_arn: str = Field(
        validation_alias=env_names.MODEL_KMS_KEY_ARN,
        pattern=r"^arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:key/[a-zA-Z0-9-]{36}$",
    )
    grader_functions: dict[str, str] = Field(validation_alias=env_names.GRADER_FUNCTIONS)
    run_policy: RunPolicy = Field(validation_alias=env_names.RUN_POLICY)
    model_retention: int = Field(default=DEFAULT_RETENTION, validation_alias=env_names.MODEL_RETENTION, ge=1)
    region: str = Field(validation_alias=AliasChoices(env_names.AWS_REGION, env_names.AWS_DEFAULT_REGION), min_length=1)

    @field_validator("grader_functions", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("run_policy", mode="before")
    @classmethod
    def _parse_policy(cls, value: object) -> RunPolicy:
        return parse_policy(value, where=env_names.RUN_POLICY)


def load_environment(environ: Mapping[str, str]) -> PipelineEnvironment:
    """Validate the environment; the error names every missing or malformed variable."""
    return load_settings(PipelineEnvironment, environ)
