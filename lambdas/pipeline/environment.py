"""The stage functions' configuration: one pydantic model read from the environment.

Set by the Pipeline construct (``stacks/pipeline.py``) on every stage function:

- ``PIPELINE_NAME``: the pipeline's name (job name prefix, champion record key);
- ``DATA_BUCKET``: the bucket datasets must be in (under ``datasets/``);
- ``ARTIFACTS_BUCKET``: recipes, job outputs, run records, champion records;
- ``BEDROCK_IMPORT_ROLE_ARN``: the role Bedrock assumes to read checkpoints;
- ``GRADER_FUNCTIONS``: JSON object, grader preset name -> reward Lambda ARN;
- ``AWS_REGION`` (set by Lambda; ``AWS_DEFAULT_REGION`` elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment problem)."""


class PipelineEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True)

    pipeline_name: str = Field(min_length=1)
    data_bucket: str = Field(min_length=3)
    artifacts_bucket: str = Field(min_length=3)
    bedrock_import_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+")
    grader_functions: dict[str, str]
    region: str = Field(min_length=1)

    @field_validator("grader_functions", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value


_VARIABLES = {
    "pipeline_name": "PIPELINE_NAME",
    "data_bucket": "DATA_BUCKET",
    "artifacts_bucket": "ARTIFACTS_BUCKET",
    "bedrock_import_role_arn": "BEDROCK_IMPORT_ROLE_ARN",
    "grader_functions": "GRADER_FUNCTIONS",
}


def load_environment(environ: Mapping[str, str]) -> PipelineEnvironment:
    """Validate the environment; the error names every missing or malformed variable."""
    values: dict[str, Any] = {field: environ.get(name) for field, name in _VARIABLES.items()}
    values["region"] = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    missing = [name for field, name in _VARIABLES.items() if values[field] is None]
    if values["region"] is None:
        missing.append("AWS_REGION")
    if missing:
        raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
    try:
        return PipelineEnvironment(**values)
    except (ValidationError, ValueError) as error:
        raise ConfigurationError(f"invalid environment: {error}") from error
