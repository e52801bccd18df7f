"""The notify Lambda's environment, validated once at cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field

from lambdas.notify.service import NotifyConfig


class NotifySettings(BaseModel):
    """Set by the Notifications construct (stacks/monitoring.py)."""

    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)
    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET_NAME", min_length=3)
    topic_arn: str = Field(alias="TOPIC_ARN", pattern=r"^arn:[\w-]+:sns:")

    @property
    def config(self) -> NotifyConfig:
        return NotifyConfig(
            pipeline=self.pipeline_name, artifacts_bucket=self.artifacts_bucket, topic_arn=self.topic_arn
        )


@lru_cache(maxsize=1)
def settings() -> NotifySettings:
    return NotifySettings.model_validate(os.environ)
