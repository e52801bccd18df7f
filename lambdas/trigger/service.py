"""Turn one trigger message into at most one execution of the pipeline.

- A run request (``requests/<pipeline>/...``) is read at the event's object
  version, validated, and started under a name derived from its key and
  version, so a duplicate event finds the same name and starts nothing.
- A ``_READY`` marker or a schedule firing starts the stored request template.
- A request with a permanent problem is moved to ``requests/rejected/<pipeline>/``
  with a ``.error.json`` beside it, and the notifications topic is told; a
  template that cannot start leaves an ``.error.json`` there too, also notified.
  Permanent problems are the ones no retry can fix: an invalid or non-strict
  JSON request (``NaN``, ``1e309``), an object the trigger may not read (access
  denied, a KMS key it may not use, SSE-C, an archived storage class), an
  input ``StartExecution`` refuses, and a message that waited longer than the
  trigger's maximum wait (:attr:`TriggerConfig.max_wait_seconds`).
- Every other error is transient: it is raised, the message stays in the queue
  and is retried after the visibility timeout, at most ``maxReceiveCount``
  times, then it lands in the dead-letter queue (whose alarm tells someone).
- While the run lock is held or any execution of the pipeline is running,
  :class:`RunInProgress` is raised: the handler reports the message as failed,
  so it stays in the queue and is retried after the visibility timeout (one
  run at a time on the GPUs). Nothing is dropped silently.

Clients are parameters; nothing here creates an AWS client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas.common import run_lock
from lambdas.common.aws_errors import error_code, is_missing
from lambdas.trigger.layout import BucketLayout, ObjectKind, execution_name
from lambdas.trigger.messages import ObjectCreated, ScheduledRetrain, TriggerMessage
from lambdas.trigger.validation import MAX_REQUEST_BYTES, Validator, parse_request, request_validator

# S3 GetObject / CopyObject errors no retry can fix: the trigger may not read the object (its role, the
# bucket policy or a KMS key it may not use), the object is SSE-C encrypted (S3 answers 400 InvalidRequest
# without the customer key) or archived (GetObject: InvalidObjectState; CopyObject: ObjectNotInActiveTierError).
# KMS errors S3 passes on start with "KMS.".
_UNREADABLE_CODES = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidObjectState", "ObjectNotInActiveTierError", "InvalidRequest"}
)
# StartExecution errors that say the input or name is refused: starting again cannot succeed.
_REFUSED_START_CODES = frozenset({"InvalidExecutionInput", "ValidationException", "InvalidName"})


def _is_unreadable(error: BaseException) -> bool:
    code = error_code(error) or ""
    return code in _UNREADABLE_CODES or code.startswith("KMS.")


def _describe_error(error: BaseException) -> str:
    response = getattr(error, "response", None)
    details = response.get("Error", {}) if isinstance(response, dict) else {}
    code, message = details.get("Code"), details.get("Message")
    return ": ".join(str(p) for p in (code, message) if p) or f"{type(error).__name__}: {error}"


class Unreadable(Exception):
    """The request cannot be read, and no retry will change that."""


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
    # The notifications topic told of every rejection (None: rejections are only written).
    topic_arn: str | None = None
    # The run lock's table (lambdas/common/run_lock.py); None: only running executions are checked.
    lock_table: str | None = None
    # A message older than this is rejected instead of started or kept waiting (stacks/triggers.py derives
    # it from the queue's retention and the run timeout, so every message is seen before it could expire).
    max_wait_seconds: float | None = None

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
    sns: Any = None,
    dynamodb: Any = None,
    enqueued_at: datetime | None = None,
    validate: Validator | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Start, deduplicate, reject or ignore; raise :class:`RunInProgress` to wait.

    ``validate`` defaults to the pipeline's run-input checks for this data bucket; ``enqueued_at`` is when
    the message entered the queue (its ``SentTimestamp``), compared with ``config.max_wait_seconds``.
    """
    validate = validate or request_validator(config.data_bucket)
    ctx = _Context(config, s3, sfn, sns, dynamodb, validate, now, enqueued_at)
    if isinstance(message, ScheduledRetrain):
        if message.pipeline != config.pipeline:
            return Outcome("ignored", message.pipeline, reasons=[f"schedule of another pipeline: {message.pipeline}"])
        source = _Source(config.layout.template_key, f"scheduled-{message.scheduled_time}")
        name = execution_name("scheduled", source.key, source.version_id, label=config.pipeline)
        return _start_template(source, name, ctx)
    return _handle_object(message, ctx)


@dataclass(frozen=True)
class _Context:
    """What handling one message needs: the pipeline, its clients, the checks and the clock."""

    config: TriggerConfig
    s3: Any
    sfn: Any
    sns: Any
    dynamodb: Any
    validate: Validator
    now: Callable[[], datetime]
    enqueued_at: datetime | None

    def waited_too_long(self) -> str | None:
        """Why the message may no longer start a run (it waited past the maximum), or ``None``."""
        limit = self.config.max_wait_seconds
        if limit is None or self.enqueued_at is None:
            return None
        waited = (self.now() - self.enqueued_at).total_seconds()
        if waited <= limit:
            return None
        return (
            f"the request waited {waited / 3600:.1f} h in the trigger queue, longer than the maximum wait of "
            f"{limit / 3600:.1f} h (runs ahead of it did not end in time); upload it again to run it"
        )


def _handle_object(event: ObjectCreated, ctx: _Context) -> Outcome:
    config = ctx.config
    source = _Source(event.key, event.version_id)
    if event.bucket != config.data_bucket:
        return Outcome("ignored", source.describe(), reasons=[f"not the data bucket: {event.bucket}"])
    kind = config.layout.classify(event.key)
    if kind is ObjectKind.IGNORED:
        # Rejections, templates and data files never start runs (the rule excludes most of them already).
        return Outcome("ignored", source.describe(), reasons=["not a run request or a _READY marker"])
    if kind is ObjectKind.READY_MARKER:
        name = execution_name("ready", event.key, source.version_id, label=_marker_label(event.key, config.layout))
        return _start_template(source, name, ctx)

    name = execution_name("request", event.key, source.version_id)
    if too_old := _too_old(source, name, ctx, lambda reasons: _reject_request(source, name, reasons, ctx)):
        return too_old
    try:
        body = _read(ctx.s3, config.data_bucket, source.key, source.version_id)
    except Unreadable as error:
        return _reject_request(source, name, [str(error)], ctx)
    if body is None:
        return Outcome("ignored", source.describe(), reasons=["the object version no longer exists"])
    request, problems = parse_request(body, ctx.validate)
    if request is None:
        return _reject_request(source, name, problems, ctx)
    return _start(request, name, source, ctx, reject=lambda reasons: _reject_request(source, name, reasons, ctx))


def _start_template(source: _Source, name: str, ctx: _Context) -> Outcome:
    """Start the stored template; when it is missing or invalid, explain why in ``requests/rejected/``."""
    config = ctx.config
    template_key = config.layout.template_key

    def explain(problems: list[str]) -> Outcome:
        _write_error(config.layout.error_key(name), source, problems, ctx)
        _notify_rejection(source, problems, config.layout.error_key(name), ctx)
        return Outcome("rejected", source.describe(), execution_name=name, reasons=problems)

    if too_old := _too_old(source, name, ctx, explain):
        return too_old
    try:
        body = _read(ctx.s3, config.data_bucket, template_key, None)
    except Unreadable as error:
        return explain([f"{template_key}: {error}"])
    if body is None:
        return explain([f"no request template at s3://{config.data_bucket}/{template_key}"])
    request, problems = parse_request(body, ctx.validate)
    if request is None:
        return explain([f"{template_key}: {p}" for p in problems])
    return _start(request, name, source, ctx, reject=explain)


def _start(
    request: dict[str, Any], name: str, source: _Source, ctx: _Context, *, reject: Callable[[list[str]], Outcome]
) -> Outcome:
    config, sfn = ctx.config, ctx.sfn
    running = _running_executions(sfn, config.state_machine_arn)
    if name in running:
        return Outcome("duplicate", source.describe(), execution_name=name, execution_arn=running[name])
    holder = _lock_holder(ctx, running)
    if running or holder:
        # A duplicate of a request whose run already ended is acknowledged now, not kept waiting behind another run.
        if finished := _existing_execution(sfn, config.state_machine_arn, name):
            return Outcome("duplicate", source.describe(), execution_name=name, execution_arn=finished)
        raise RunInProgress(sorted(set(running) | ({holder} if holder else set())))
    try:
        response = sfn.start_execution(stateMachineArn=config.state_machine_arn, name=name, input=json.dumps(request))
    except sfn.exceptions.ExecutionAlreadyExists:
        # A duplicate event after the first execution finished: names are unique for 90 days.
        return Outcome("duplicate", source.describe(), execution_name=name)
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if error_code(error) in _REFUSED_START_CODES:
            return reject([f"Step Functions refused to start the run: {_describe_error(error)}"])
        raise
    return Outcome("started", source.describe(), execution_name=name, execution_arn=response["executionArn"])


def _too_old(source: _Source, name: str, ctx: _Context, reject: Callable[[list[str]], Outcome]) -> Outcome | None:
    """A message past the maximum wait is rejected before anything else is tried (a duplicate of a run that
    already happened is acknowledged instead); ``None`` when it is young enough."""
    too_long = ctx.waited_too_long()
    if too_long is None:
        return None
    if finished := _existing_execution(ctx.sfn, ctx.config.state_machine_arn, name):
        return Outcome("duplicate", source.describe(), execution_name=name, execution_arn=finished)
    return reject([too_long])


def _lock_holder(ctx: _Context, running: dict[str, str]) -> str | None:
    """The execution holding the run lock, if it is still running; a lock left by an ended execution is freed."""
    table = ctx.config.lock_table
    if table is None or ctx.dynamodb is None:
        return None
    holder = run_lock.lock_holder(ctx.dynamodb, table, ctx.config.pipeline)
    if holder is None or holder in running.values():
        return holder
    try:
        status = ctx.sfn.describe_execution(executionArn=holder)["status"]
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if not is_missing(error):
            raise
        status = "MISSING"
    if status == "RUNNING":
        return holder  # listed late: ListExecutions is eventually consistent
    # Its end was not seen by the notify function (or its release failed): free the lock for the next run.
    run_lock.release(ctx.dynamodb, table, ctx.config.pipeline, holder)
    return None


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


def _reject_request(source: _Source, name: str, problems: list[str], ctx: _Context) -> Outcome:
    """Move the request to ``requests/rejected/`` (copy, explain, then delete the original) and notify.

    An object the trigger cannot read cannot be copied either: the explanation says so, and the original
    version stays recoverable in the versioned bucket behind the delete marker.
    """
    config, s3 = ctx.config, ctx.s3
    layout = config.layout
    rejected_key = layout.rejected_key(source.key)
    copy_source = {"Bucket": config.data_bucket, "Key": source.key}
    if source.version_id:
        copy_source["VersionId"] = source.version_id
    try:
        # Tags are not copied: the trigger is not granted s3:GetObjectTagging / s3:PutObjectTagging.
        s3.copy_object(Bucket=config.data_bucket, Key=rejected_key, CopySource=copy_source, TaggingDirective="REPLACE")
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if not _is_unreadable(error):
            raise
        problems = [
            *problems,
            f"the request could not be copied here ({_describe_error(error)}); version {source.version_id} "
            f"stays in the bucket under {source.key}",
        ]
    _write_error(layout.error_key(rejected_key), source, problems, ctx)
    # A delete marker: the rejected version stays recoverable in the versioned bucket.
    s3.delete_object(Bucket=config.data_bucket, Key=source.key)
    _notify_rejection(source, problems, layout.error_key(rejected_key), ctx)
    return Outcome("rejected", source.describe(), execution_name=name, reasons=problems)


def _write_error(key: str, source: _Source, problems: list[str], ctx: _Context) -> None:
    document = {
        "errors": problems,
        "source": {"bucket": ctx.config.data_bucket, "key": source.key, "versionId": source.version_id},
        "pipeline": ctx.config.pipeline,
        "rejectedAt": ctx.now().isoformat(),
    }
    ctx.s3.put_object(
        Bucket=ctx.config.data_bucket,
        Key=key,
        Body=json.dumps(document, indent=2).encode(),
        ContentType="application/json",
    )


# SNS limits: a subject of at most 100 characters; the message is kept well under its 256 KB.
_SUBJECT_LIMIT = 100
_MESSAGE_PROBLEMS = 20
_PROBLEM_CHARS = 500


def _notify_rejection(source: _Source, problems: list[str], error_key: str, ctx: _Context) -> None:
    """Tell the notifications topic that a request or trigger could not start a run, and why."""
    if ctx.config.topic_arn is None or ctx.sns is None:
        return
    shown = [p if len(p) <= _PROBLEM_CHARS else p[: _PROBLEM_CHARS - 1] + "…" for p in problems[:_MESSAGE_PROBLEMS]]
    more = len(problems) - len(shown)
    lines = [
        f"Pipeline {ctx.config.pipeline}: s3://{ctx.config.data_bucket}/{source.describe()} did not start a run.",
        "",
        *(f"- {p}" for p in shown),
        *([f"- … and {more} more"] if more > 0 else []),
        "",
        f"Details: s3://{ctx.config.data_bucket}/{error_key}",
    ]
    subject = f"[{ctx.config.pipeline}] run request rejected"
    ctx.sns.publish(TopicArn=ctx.config.topic_arn, Subject=subject[:_SUBJECT_LIMIT], Message="\n".join(lines))


def _read(s3: Any, bucket: str, key: str, version_id: str | None) -> bytes | None:
    """The object's first bytes (enough to tell it is too large), or ``None`` when it does not exist.

    Raises :class:`Unreadable` for errors no retry can fix; other errors are raised as they are (transient).
    """
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
        if _is_unreadable(error):
            raise Unreadable(f"s3://{bucket}/{key} cannot be read by the trigger: {_describe_error(error)}") from error
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
