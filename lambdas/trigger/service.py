"""Turn one trigger message into at most one execution of the pipeline.

- A run request (``requests/<pipeline>/...``) is read at the event's object
  version, validated, and started under a name derived from its key and
  version, so a duplicate event finds the same name and starts nothing.
- A ``_READY`` marker or a schedule firing starts the stored request template.
- A request with problems is moved to ``requests/rejected/<pipeline>/`` with a
  ``.error.json`` beside it; a template that cannot start leaves an
  ``.error.json`` there too. Nothing is dropped silently.
- While any execution of the pipeline is running, :class:`RunInProgress` is
  raised: the handler reports the message as failed, so it stays in the queue
  and is retried after the visibility timeout (one run at a time on the GPUs).

Clients are parameters; nothing here creates an AWS client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas.common.aws_errors import is_missing
from lambdas.trigger.layout import BucketLayout, ObjectKind, execution_name
from lambdas.trigger.messages import ObjectCreated, ScheduledRetrain, TriggerMessage
from lambdas.trigger.validation import MAX_REQUEST_BYTES, Validator, parse_request, request_validator


class RunInProgress(Exception):
    """An execution of the pipeline is running; this message must wait in the queue."""

    def __init__(self, running: list[str]) -> None:
        super().__init__(f"waiting for the running execution(s) {', '.join(running)} to end")
        self.running = running


@dataclass(frozen=True)
class TriggerConfig:
    """What the trigger acts on: one pipeline's state machine and data bucket."""

    pipeline: str
    data_bucket: str
    state_machine_arn: str

    @property
    def layout(self) -> BucketLayout:
        return BucketLayout(self.pipeline)


@dataclass(frozen=True)
class Outcome:
    """What happened to one message: ``started``, ``duplicate``, ``rejected`` or ``ignored``."""

    action: str
    source: str
    execution_name: str | None = None
    execution_arn: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Source:
    """The object (or schedule firing) a run is started for, as named in logs and error files."""

    key: str
    version_id: str | None

    def describe(self) -> str:
        return f"{self.key}@{self.version_id}" if self.version_id else self.key


def handle_message(
    message: TriggerMessage,
    *,
    config: TriggerConfig,
    s3: Any,
    sfn: Any,
    validate: Validator | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Start, deduplicate, reject or ignore; raise :class:`RunInProgress` to wait.

    ``validate`` defaults to the pipeline's run-input checks for this data bucket.
    """
    validate = validate or request_validator(config.data_bucket)
    if isinstance(message, ScheduledRetrain):
        if message.pipeline != config.pipeline:
            return Outcome("ignored", message.pipeline, reasons=[f"schedule of another pipeline: {message.pipeline}"])
        source = _Source(config.layout.template_key, f"scheduled-{message.scheduled_time}")
        name = execution_name("scheduled", source.key, source.version_id, label=config.pipeline)
        return _start_template(source, name, config=config, s3=s3, sfn=sfn, validate=validate, now=now)
    return _handle_object(message, config=config, s3=s3, sfn=sfn, validate=validate, now=now)


def _handle_object(
    event: ObjectCreated,
    *,
    config: TriggerConfig,
    s3: Any,
    sfn: Any,
    validate: Validator,
    now: Callable[[], datetime],
) -> Outcome:
    source = _Source(event.key, event.version_id)
    if event.bucket != config.data_bucket:
        return Outcome("ignored", source.describe(), reasons=[f"not the data bucket: {event.bucket}"])
    kind = config.layout.classify(event.key)
    if kind is ObjectKind.IGNORED:
        # Rejections, templates and data files never start runs (the rule excludes most of them already).
        return Outcome("ignored", source.describe(), reasons=["not a run request or a _READY marker"])
    if kind is ObjectKind.READY_MARKER:
        name = execution_name("ready", event.key, source.version_id, label=_marker_label(event.key, config.layout))
        return _start_template(source, name, config=config, s3=s3, sfn=sfn, validate=validate, now=now)

    name = execution_name("request", event.key, source.version_id)
    body = _read(s3, config.data_bucket, source.key, source.version_id)
    if body is None:
        return Outcome("ignored", source.describe(), reasons=["the object version no longer exists"])
    request, problems = parse_request(body, validate)
    if request is None:
        _reject_request(source, problems, config=config, s3=s3, now=now)
        return Outcome("rejected", source.describe(), execution_name=name, reasons=problems)
    return _start(request, name, source, config=config, sfn=sfn)


def _start_template(
    source: _Source,
    name: str,
    *,
    config: TriggerConfig,
    s3: Any,
    sfn: Any,
    validate: Validator,
    now: Callable[[], datetime],
) -> Outcome:
    """Start the stored template; when it is missing or invalid, explain why in ``requests/rejected/``."""
    template_key = config.layout.template_key
    body = _read(s3, config.data_bucket, template_key, None)
    if body is None:
        problems = [f"no request template at s3://{config.data_bucket}/{template_key}"]
    else:
        request, problems = parse_request(body, validate)
        problems = [f"{template_key}: {p}" for p in problems]
        if request is not None:
            return _start(request, name, source, config=config, sfn=sfn)
    _write_error(config.layout.error_key(name), source, problems, config=config, s3=s3, now=now)
    return Outcome("rejected", source.describe(), execution_name=name, reasons=problems)


def _start(request: dict[str, Any], name: str, source: _Source, *, config: TriggerConfig, sfn: Any) -> Outcome:
    running = _running_executions(sfn, config.state_machine_arn)
    if name in running:
        return Outcome("duplicate", source.describe(), execution_name=name, execution_arn=running[name])
    if running:
        # A duplicate of a request whose run already ended is acknowledged now, not kept waiting behind another run.
        if finished := _existing_execution(sfn, config.state_machine_arn, name):
            return Outcome("duplicate", source.describe(), execution_name=name, execution_arn=finished)
        raise RunInProgress(sorted(running))
    try:
        response = sfn.start_execution(stateMachineArn=config.state_machine_arn, name=name, input=json.dumps(request))
    except sfn.exceptions.ExecutionAlreadyExists:
        # A duplicate event after the first execution finished: names are unique for 90 days.
        return Outcome("duplicate", source.describe(), execution_name=name)
    return Outcome("started", source.describe(), execution_name=name, execution_arn=response["executionArn"])


def _existing_execution(sfn: Any, state_machine_arn: str, name: str) -> str | None:
    """The ARN of the execution called ``name`` in any status, or ``None`` when there is none."""
    arn = f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"
    try:
        return str(sfn.describe_execution(executionArn=arn)["executionArn"])
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_missing(error):
            return None
        raise


def _running_executions(sfn: Any, state_machine_arn: str) -> dict[str, str]:
    paginator = sfn.get_paginator("list_executions")
    return {
        execution["name"]: execution["executionArn"]
        for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
        for execution in page["executions"]
    }


def _reject_request(
    source: _Source, problems: list[str], *, config: TriggerConfig, s3: Any, now: Callable[[], datetime]
) -> None:
    """Move the request to ``requests/rejected/`` (copy, explain, then delete the original)."""
    layout = config.layout
    rejected_key = layout.rejected_key(source.key)
    copy_source = {"Bucket": config.data_bucket, "Key": source.key}
    if source.version_id:
        copy_source["VersionId"] = source.version_id
    # Tags are not copied: the trigger is not granted s3:GetObjectTagging / s3:PutObjectTagging.
    s3.copy_object(Bucket=config.data_bucket, Key=rejected_key, CopySource=copy_source, TaggingDirective="REPLACE")
    _write_error(layout.error_key(rejected_key), source, problems, config=config, s3=s3, now=now)
    # A delete marker: the rejected version stays recoverable in the versioned bucket.
    s3.delete_object(Bucket=config.data_bucket, Key=source.key)


def _write_error(
    key: str, source: _Source, problems: list[str], *, config: TriggerConfig, s3: Any, now: Callable[[], datetime]
) -> None:
    document = {
        "errors": problems,
        "source": {"bucket": config.data_bucket, "key": source.key, "versionId": source.version_id},
        "pipeline": config.pipeline,
        "rejectedAt": now().isoformat(),
    }
    s3.put_object(
        Bucket=config.data_bucket,
        Key=key,
        Body=json.dumps(document, indent=2).encode(),
        ContentType="application/json",
    )


def _read(s3: Any, bucket: str, key: str, version_id: str | None) -> bytes | None:
    """The object's first bytes (enough to tell it is too large), or ``None`` when it does not exist."""
    params = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    try:
        body = s3.get_object(**params)["Body"]
        try:
            data: bytes = body.read(MAX_REQUEST_BYTES + 1)  # botocore's StreamingBody reads bytes
            return data
        finally:
            body.close()
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_missing(error):
            return None
        raise


def _marker_label(marker_key: str, layout: BucketLayout) -> str:
    """``datasets/<pipeline>/2025-06/_READY`` -> ``2025-06`` (the folder the marker completes)."""
    folder = marker_key.removeprefix(layout.datasets_prefix).removesuffix("_READY").strip("/")
    return folder or layout.pipeline


def park_unrecognized(body: str, reason: str, *, sqs: Any, dead_letter_queue_url: str, group: str) -> None:
    """Send a message that can never start a run straight to the dead-letter queue (its alarm fires)."""
    sqs.send_message(
        QueueUrl=dead_letter_queue_url,
        MessageBody=body,
        MessageGroupId=group,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1024]}},
    )
