"""Approval before deployment (context ``approval``: ``none`` or ``required``).

With ``required``, a run whose gate passed stops at "Wait for approval", a Lambda task with
``.waitForTaskToken``: :func:`request_approval` keeps the task token in the artifacts bucket
(``runs/<run-id>/approval-token.json``, encrypted with the project key) and publishes a notification saying
how to decide. A decision is a JSON object written to the data bucket::

    approvals/<run-id>.json    {"decision": "approve" | "reject", "reason": "<why>"}

(``novactl approve RUN --reason ...`` / ``novactl reject`` write it; the ``writers.approvals`` principals
of the bucket policy may write it too). Its object-created event invokes the decision function:
:func:`apply_decision` reads the file strictly, then calls ``SendTaskSuccess`` with the stored token and
``{"decision", "reason", "file", "decidedAt"}`` as the task's output; the state machine deploys on
``approve`` and records the run as ``REJECTED`` on ``reject``. A file that is not a valid decision, or a
decision for a run that is not waiting, leaves ``approvals/<run-id>.error.json`` and a notification, and the
run keeps waiting. No decision within ``approvalTimeoutHours`` ends the task with ``States.Timeout``: the
run is recorded as ``APPROVAL_EXPIRED``.

Clients are parameters; nothing here creates an AWS client.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from lambdas.common import layout, strict_json
from lambdas.common.aws_errors import error_code, is_missing

APPROVALS_PREFIX = "approvals/"
DECISIONS = ("approve", "reject")
TOKEN_NAME = "approval-token.json"
ERROR_SUFFIX = ".error.json"
MAX_DECISION_BYTES = 16 * 1024
MAX_REASON_CHARS = 1000
# SendTaskSuccess errors that mean the execution no longer waits for this token.
NOT_WAITING_ERRORS = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")
_DECISION_KEY = re.compile(rf"^{APPROVALS_PREFIX}(?P<run>[a-z0-9][a-z0-9-]{{0,126}})\.json$")


def decision_key(run_id: str) -> str:
    return f"{APPROVALS_PREFIX}{run_id}.json"


def error_key(run_id: str) -> str:
    return f"{APPROVALS_PREFIX}{run_id}{ERROR_SUFFIX}"


def token_key(run_id: str) -> str:
    return f"{layout.run_prefix(run_id)}{TOKEN_NAME}"


def run_of(key: str) -> str | None:
    """The run id of a decision file's key; ``None`` for other keys (error files among them)."""
    if key.endswith(ERROR_SUFFIX):
        return None
    match = _DECISION_KEY.match(key)
    return match.group("run") if match else None


class ApprovalError(ValueError):
    """A decision that cannot be applied; the message names the file and the problem."""


def parse_decision(body: bytes, where: str) -> dict[str, str]:
    """``{"decision", "reason"}`` from a decision file: a JSON object with exactly these two keys."""
    if len(body) > MAX_DECISION_BYTES:
        raise ApprovalError(f"{where}: {len(body)} bytes; a decision is at most {MAX_DECISION_BYTES} bytes")

    try:
        value = strict_json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ApprovalError(f"{where}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ApprovalError(f'{where}: expected a JSON object {{"decision": "approve" | "reject", "reason": "..."}}')
    problems = [f"{where}: unknown field {name!r}" for name in sorted(set(value) - {"decision", "reason"})]
    decision, reason = value.get("decision"), value.get("reason")
    if decision not in DECISIONS:
        problems.append(f"{where}: decision {decision!r}: expected one of {', '.join(DECISIONS)}")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(f"{where}: reason: a non-empty string saying why")
    elif len(reason) > MAX_REASON_CHARS:
        problems.append(f"{where}: reason: {len(reason)} characters, at most {MAX_REASON_CHARS}")
    if problems:
        raise ApprovalError("; ".join(problems))
    return {"decision": str(decision), "reason": str(reason)}


@dataclass(frozen=True)
class Buckets:
    data: str
    artifacts: str


def instructions(run_id: str, buckets: Buckets, expires_at: str | None) -> str:
    """How to approve or reject a waiting run (the notification's body)."""
    uri = layout.s3_uri(buckets.data, decision_key(run_id))
    until = f" before {expires_at}" if expires_at else ""
    return (
        f"Run {run_id} passed its quality gate and waits for approval before its model is imported and "
        f"deployed. Decide{until}:\n"
        f"  novactl approve {run_id} --reason '...'   or   novactl reject {run_id} --reason '...'\n"
        f'or write {uri} = {{"decision": "approve" | "reject", "reason": "..."}}.\n'
        "Without a decision the run ends as APPROVAL_EXPIRED; a rejected run is recorded as REJECTED."
    )


def request_approval(
    event: dict[str, Any], *, s3: Any, sns: Any, buckets: Buckets, topic_arn: str | None
) -> dict[str, Any]:
    """Keep the task token of "Wait for approval" and say how to decide; the run waits for the decision."""
    token, run_id = event.get("taskToken"), event.get("runId")
    if not isinstance(token, str) or not token or not isinstance(run_id, str) or not run_id:
        raise ValueError("Wait for approval: the payload needs taskToken and runId")
    expires_at = _expiry(event.get("requestedAt"), event.get("timeoutSeconds"))
    stored = {"taskToken": token, "runId": run_id, "requestedAt": event.get("requestedAt"), "expiresAt": expires_at}
    s3.put_object(
        Bucket=buckets.artifacts,
        Key=token_key(run_id),
        Body=json.dumps(stored).encode(),
        ContentType="application/json",
    )
    message = instructions(run_id, buckets, expires_at)
    gate = event.get("gate")
    reasons = gate.get("reasons") if isinstance(gate, dict) else None
    if isinstance(reasons, list) and reasons:
        message += "\n\nQuality gate: PASSED\n" + "\n".join(f"  - {reason}" for reason in reasons[:20])
    if topic_arn:
        sns.publish(TopicArn=topic_arn, Subject=f"Nova run {run_id}: approval needed"[:100], Message=message)
    return {"runId": run_id, "tokenUri": layout.s3_uri(buckets.artifacts, token_key(run_id)), "message": message}


def _expiry(requested_at: object, timeout_seconds: object) -> str | None:
    """When the wait times out (``requestedAt`` + ``timeoutSeconds``), ISO 8601 UTC; ``None`` if unknown."""
    if not isinstance(requested_at, str) or not isinstance(timeout_seconds, int):
        return None
    try:
        start = dt.datetime.fromisoformat(requested_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (start + dt.timedelta(seconds=timeout_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_decision(
    bucket: str, key: str, *, s3: Any, stepfunctions: Any, sns: Any, buckets: Buckets, topic_arn: str | None, at: str
) -> dict[str, Any]:
    """Apply ``approvals/<run-id>.json``; a problem leaves an error file and a notification, never an exception."""
    run_id = run_of(key)
    if bucket != buckets.data or run_id is None:
        return {"ignored": layout.s3_uri(bucket, key)}
    where = layout.s3_uri(bucket, key)
    try:
        decision = parse_decision(_read(s3, bucket, key, where), where)
        token = _stored_token(s3, buckets.artifacts, run_id, where)
        output = {**decision, "file": where, "decidedAt": at}
        try:
            stepfunctions.send_task_success(taskToken=token, output=json.dumps(output))
        except Exception as error:  # botocore's ClientError
            if error_code(error) in NOT_WAITING_ERRORS:
                raise ApprovalError(
                    f"{where}: run {run_id} no longer waits for approval ({error_code(error)})"
                ) from None
            raise
        s3.delete_object(Bucket=buckets.artifacts, Key=token_key(run_id))
    except ApprovalError as error:
        return _refuse(run_id, str(error), s3=s3, sns=sns, buckets=buckets, topic_arn=topic_arn, at=at)
    if topic_arn:
        verb = "approved" if decision["decision"] == "approve" else "rejected"
        sns.publish(
            TopicArn=topic_arn,
            Subject=f"Nova run {run_id}: {verb}"[:100],
            Message=f"Run {run_id} was {verb} ({where}): {decision['reason']}",
        )
    return {"runId": run_id, **decision}


def _read(s3: Any, bucket: str, key: str, where: str) -> bytes:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_DECISION_BYTES + 1)
    except Exception as error:  # noqa: BLE001 - an unreadable decision is reported, never a crash
        raise ApprovalError(f"{where}: cannot be read ({error_code(error) or type(error).__name__})") from None
    return body


def _stored_token(s3: Any, bucket: str, run_id: str, where: str) -> str:
    try:
        stored = json.loads(s3.get_object(Bucket=bucket, Key=token_key(run_id))["Body"].read())
    except Exception as error:  # noqa: BLE001 - an unreadable token is reported, never a crash
        if is_missing(error):
            raise ApprovalError(f"{where}: run {run_id} is not waiting for approval") from None
        raise ApprovalError(f"{where}: the approval token of run {run_id} cannot be read ({error})") from None
    token = stored.get("taskToken") if isinstance(stored, dict) else None
    if not isinstance(token, str) or not token:
        raise ApprovalError(f"{where}: the approval token of run {run_id} is malformed")
    return token


def _refuse(
    run_id: str, problem: str, *, s3: Any, sns: Any, buckets: Buckets, topic_arn: str | None, at: str
) -> dict[str, Any]:
    body = {"error": problem, "file": layout.s3_uri(buckets.data, decision_key(run_id)), "at": at}
    s3.put_object(
        Bucket=buckets.data,
        Key=error_key(run_id),
        Body=json.dumps(body, indent=2).encode(),
        ContentType="application/json",
    )
    if topic_arn:
        sns.publish(
            TopicArn=topic_arn,
            Subject=f"Nova run {run_id}: approval not applied"[:100],
            Message=f"{problem}\nThe run still waits; write a valid decision to apply it.",
        )
    return {"runId": run_id, "error": problem, "errorFile": layout.s3_uri(buckets.data, error_key(run_id))}
