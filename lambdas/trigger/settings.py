"""The trigger Lambda's environment, validated once at cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field

from lambdas.trigger.service import TriggerConfig


class TriggerSettings(BaseModel):
    """Set by the Triggers construct (stacks/triggers.py)."""

    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)
    data_bucket: str = Field(alias="DATA_BUCKET_NAME", min_length=3)
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:[\w-]+:states:")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)

    @property
    def config(self) -> TriggerConfig:
        return TriggerConfig(
            pipeline=self.pipeline_name, data_bucket=self.data_bucket, state_machine_arn=self.state_machine_arn
        )


@lru_cache(maxsize=1)
def settings() -> TriggerSettings:
    return TriggerSettings.model_validate(os.environ)
