"""Deterministic names: run ids, training job names, Bedrock names and idempotency tokens, and the
stage catalogue (stages, job codes, methods, phases and labels). S3 keys are :mod:`lambdas.common.layout`.

Everything is derived from the execution name and the pipeline name, so a retried
Lambda or a re-read run record always computes the same names:

- run id: the execution name cleaned to ``[A-Za-z0-9-]`` and cut, then ``-`` and a short hash of
  the execution ARN (always: two executions never share a run id, whatever their names -- ``my_run``
  and ``my-run``, ``Run-A`` and ``run-a`` in job names, or the same name in two state machines);
- training job: ``<pipeline>-<run>-<stage code>-a<attempt>`` (SageMaker pattern
  ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``, lower case, at most 63 characters) -- a new
  attempt gets a new name because job names are unique per account and region;
- Bedrock model / deployment: ``<pipeline>-<run>`` / ``<pipeline>-<run>-od`` (pattern
  ``([0-9a-zA-Z][_-]?){1,63}``); ``clientRequestToken`` likewise, so a retried
  create call never imports or deploys twice. An evaluation on Bedrock deploys its candidate under
  its job's name (``<pipeline>-<run>-<stage code>-a<attempt>``), which is also the create call's token.
"""

from __future__ import annotations

import hashlib
import re

MAX_RUN_ID = 80
MAX_JOB_NAME = 63
MAX_BEDROCK_NAME = 63

STAGES = ("baselineEval", "sft", "sftEval", "rft", "finalEval")
JOB_STAGE_CODES = {
    "baselineEval": "eval-base",
    "sft": "sft",
    "sftEval": "eval-sft",
    "rft": "rft",
    "finalEval": "eval-final",
}
STAGE_METHODS = {"baselineEval": "eval", "sft": "sft", "sftEval": "eval", "rft": "rft", "finalEval": "eval"}
# Job stages that run at the same time, phase by phase (the state machine's Parallel states).
STAGE_PHASES: tuple[tuple[str, ...], ...] = (("baselineEval", "sft"), ("sftEval", "rft"), ("finalEval",))
STAGE_LABELS = {
    "baselineEval": "baseline evaluation",
    "sft": "SFT training",
    "sftEval": "SFT evaluation",
    "rft": "RFT training",
    "finalEval": "final evaluation",
}

_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(?P<account>\d{12}):")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9-]+")
_UNSAFE_NAME = re.compile(r"[^a-z0-9]+")


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


RUN_ID_HASH = 8
_RUN_ID = re.compile(rf"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?-)?[0-9a-f]{{{RUN_ID_HASH}}}$")


def run_id_from_execution(execution_name: str, execution_arn: str | None) -> str:
    """The run id of an execution: its cleaned name, ``-`` and a hash of its ARN (of its name when the ARN
    is unknown, which a real execution never is)."""
    cleaned = _UNSAFE_RUN.sub("-", execution_name or "").strip("-")
    cleaned = cleaned[: MAX_RUN_ID - RUN_ID_HASH - 1].rstrip("-")
    suffix = _digest(execution_arn or execution_name or "", RUN_ID_HASH)
    return f"{cleaned}-{suffix}" if cleaned else f"run-{suffix}"


def account_of_arn(arn: str | None) -> str | None:
    """The 12-digit account of an ARN (``arn:aws:states:<region>:<account>:execution:...``), or None."""
    match = _ARN_ACCOUNT.match(arn or "")
    return match["account"] if match else None


def is_run_id(text: str) -> bool:
    """Whether ``text`` can be a run id (the form :func:`run_id_from_execution` returns)."""
    return len(text) <= MAX_RUN_ID and bool(_RUN_ID.match(text))


def _slug(text: str) -> str:
    return _UNSAFE_NAME.sub("-", text.lower()).strip("-")


def _fit(prefix: str, middle: str, suffix: str, limit: int, *, original: str) -> str:
    """``prefix-middle suffix`` within ``limit`` characters; a cut middle ends with a hash of ``original``."""
    budget = limit - len(prefix) - 1 - len(suffix)
    if len(middle) > budget:
        digest = _digest(original)
        keep = max(budget - len(digest) - 1, 0)
        middle = f"{middle[:keep].rstrip('-')}-{digest}".strip("-") if keep else digest[:budget]
    return f"{prefix}-{middle}{suffix}"


def training_job_name(pipeline_name: str, run_id: str, stage: str, attempt: int) -> str:
    """``<pipeline>-<run>-<stage code>-a<attempt>``, a valid and unique SageMaker job name."""
    if stage not in JOB_STAGE_CODES:
        raise ValueError(f"unknown stage {stage!r}")
    if attempt < 1:
        raise ValueError("attempts start at 1")
    suffix = f"-{JOB_STAGE_CODES[stage]}-a{attempt}"
    # The pipeline name is used verbatim: the IAM policies allow training-job/<pipeline name>-* only.
    return _fit(pipeline_name, _slug(run_id) or "run", suffix, MAX_JOB_NAME, original=run_id)


def bedrock_model_name(pipeline_name: str, run_id: str, suffix: str = "") -> str:
    """The imported model's name: ``<pipeline>-<run>`` (``suffix`` tells a second import of the run apart)."""
    return _fit(_slug(pipeline_name), _slug(run_id) or "run", suffix, MAX_BEDROCK_NAME, original=run_id)


def bedrock_deployment_name(pipeline_name: str, run_id: str) -> str:
    """The on-demand deployment's name: ``<pipeline>-<run>-od``."""
    return _fit(_slug(pipeline_name), _slug(run_id) or "run", "-od", MAX_BEDROCK_NAME, original=run_id)


def evaluation_deployment_name(job_name: str) -> str:
    """The provisional on-demand deployment an evaluation on Bedrock invokes, named after the attempt's job
    (``<pipeline>-<run>-<stage code>-a<attempt>``): fresh per attempt, so an attempt never meets the deployment a
    failed one left behind. Also its ``clientRequestToken``."""
    slug = _slug(job_name)
    if not slug:
        raise ValueError(f"job name {job_name!r} has no letter or digit")
    return slug if len(slug) <= MAX_BEDROCK_NAME else _fit(slug[:20], slug[20:], "", MAX_BEDROCK_NAME, original=slug)


def client_request_token(pipeline_name: str, run_id: str, action: str) -> str:
    """An idempotency token for one create call of one run (``action`` is ``import`` or ``deploy``)."""
    return _fit(_slug(pipeline_name), _slug(run_id) or "run", f"-{_slug(action)}", 256, original=run_id)


def capitalized(text: str) -> str:
    """``text`` with its first letter upper case and the rest as written (``SFT evaluation`` stays)."""
    return text[:1].upper() + text[1:]


def stage_title(stage: str) -> str:
    """The stage's label as a title (``"Baseline evaluation"``); an unknown stage's key as given."""
    return capitalized(STAGE_LABELS.get(stage, stage))
