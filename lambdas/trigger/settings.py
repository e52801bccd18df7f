"""The trigger function's settings (the convention of :mod:`lambdas.common.settings`), read on first use."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field

from lambdas.common import env_names
from lambdas.common.settings import FunctionSettings, load_settings
from lambdas.trigger.service import TriggerConfig


class TriggerSettings(FunctionSettings):
    """Set by the Triggers construct (stacks/triggers.py)."""

    pipeline_name: str = Field(validation_alias=env_names.PIPELINE_NAME, min_length=1)
    data_bucket: str = Field(validation_alias=env_names.DATA_BUCKET_NAME, min_length=3)
    state_machine_arn: str = Field(validation_alias=env_names.STATE_MACHINE_ARN, pattern=r"^arn:[\w-]+:states:")
    dead_letter_queue_url: str = Field(validation_alias=env_names.DEAD_LETTER_QUEUE_URL, min_length=1)
    topic_arn: str | None = Field(default=None, validation_alias=env_names.TOPIC_ARN, pattern=r"^arn:[\w-]+:sns:")
    lock_table: str | None = Field(default=None, validation_alias=env_names.RUN_LOCK_TABLE_NAME, min_length=3)
    max_wait_seconds: float | None = Field(default=None, validation_alias=env_names.MAX_WAIT_SECONDS, gt=0)

    @property
    def config(self) -> TriggerConfig:
        return TriggerConfig(
            pipeline=self.pipeline_name,
            data_bucket=self.data_bucket,
            state_machine_arn=self.state_machine_arn,
            topic_arn=self.topic_arn,
            lock_table=self.lock_table,
            max_wait_seconds=self.max_wait_seconds,
        )


@lru_cache(maxsize=1)
def settings() -> TriggerSettings:
    return load_settings(TriggerSettings, os.environ)
