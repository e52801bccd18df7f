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

    @property
    def config(self) -> TriggerConfig:
        return TriggerConfig(
            pipeline=self.pipeline_name, data_bucket=self.data_bucket, state_machine_arn=self.state_machine_arn
        )


@lru_cache(maxsize=1)
def settings() -> TriggerSettings:
    return load_settings(TriggerSettings, os.environ)
