"""The messages the trigger queue carries: S3 object-created events (via EventBridge) and schedule firings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEDULE_SOURCE = "nova.retrain-schedule"


class _S3Bucket(BaseModel):
    name: str


class _S3Object(BaseModel):
    key: str
    version_id: str | None = Field(default=None, alias="version-id")
    etag: str | None = None


class _ObjectCreatedDetail(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


class ObjectCreated(BaseModel):
    """EventBridge ``Object Created`` event of the data bucket (the SQS message body)."""

    model_config = ConfigDict(populate_by_name=True)

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: _ObjectCreatedDetail

    @property
    def bucket(self) -> str:
        return self.detail.bucket.name

    @property
    def key(self) -> str:
        return self.detail.object.key

    @property
    def version_id(self) -> str | None:
        return self.detail.object.version_id


class ScheduledRetrain(BaseModel):
    """A retraining schedule firing: run the pipeline's stored request template."""

    source: Literal["nova.retrain-schedule"]
    pipeline: str
    scheduled_time: str = Field(alias="scheduledTime")


TriggerMessage = ObjectCreated | ScheduledRetrain


class UnrecognizedMessage(ValueError):
    """A queue message that is neither an S3 event nor a schedule firing: it can never start a run."""


def parse_message(body: object) -> TriggerMessage:
    """The typed message for a parsed SQS body."""
    if not isinstance(body, dict):
        raise UnrecognizedMessage(f"expected a JSON object, got {type(body).__name__}")
    model: type[ScheduledRetrain] | type[ObjectCreated] = (
        ScheduledRetrain if body.get("source") == SCHEDULE_SOURCE else ObjectCreated
    )
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise UnrecognizedMessage(str(error)) from error
