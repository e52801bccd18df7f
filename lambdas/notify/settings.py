"""The notify function's settings (the convention of :mod:`lambdas.common.settings`), read on first use."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field

from lambdas.common import env_names
from lambdas.common.settings import FunctionSettings, load_settings
from lambdas.notify.service import NotifyConfig


class NotifySettings(FunctionSettings):
    """Set by the Notifications construct (stacks/notifications.py)."""

    pipeline_name: str = Field(validation_alias=env_names.PIPELINE_NAME, min_length=1)
    artifacts_bucket: str = Field(validation_alias=env_names.ARTIFACTS_BUCKET_NAME, min_length=3)
    topic_arn: str = Field(validation_alias=env_names.TOPIC_ARN, pattern=r"^arn:[\w-]+:sns:")
    lock_table: str | None = Field(default=None, validation_alias=env_names.RUN_LOCK_TABLE_NAME, min_length=3)

    @property
    def config(self) -> NotifyConfig:
        return NotifyConfig(
            pipeline=self.pipeline_name,
            artifacts_bucket=self.artifacts_bucket,
            topic_arn=self.topic_arn,
            lock_table=self.lock_table,
        )


@lru_cache(maxsize=1)
def settings() -> NotifySettings:
    return load_settings(NotifySettings, os.environ)
