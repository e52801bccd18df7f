"""What the simulated services share: stage names, durations, faults to inject and service errors.

:class:`Faults` says what goes wrong in a rehearsal, :class:`Durations` how long
each simulated job or Bedrock resource takes; :func:`service_error` and
:func:`check_request` answer as a real service does (a ``ClientError`` with the
service's error code; a ``ValidationException`` for a request that does not fit
botocore's input shape).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from offline.shapes import request_problems

MINUTE = 60.0
STAGES = ("preflight", "sft", "rft", "eval", "import", "deploy")


@dataclass
class Durations:
    """Simulated minutes, from the published case studies.

    The Bedrock customization jobs: an RFT job "can take a few hours depending on the size of your training
    data, number of epochs, and complexity of your reward functions" (Amazon Bedrock User Guide, "Create and
    manage fine-tuning jobs for Amazon Nova models"): three hours; an SFT job of a few thousand rows takes one to
    two hours in the published Nova walk-throughs on Bedrock: ninety minutes. Both include Bedrock's validation
    and data processing before training.
    """

    sft: float = 40
    rft: float = 90
    eval: float = 20
    import_: float = 15
    deploy: float = 10
    bedrock_sft: float = 90
    bedrock_rft: float = 180


# Stack Overflow question-quality case: baseline -> SFT -> RFT on gen_qa metrics.
IMPROVING_METRICS = {
    "baseline": {
        "exact_match": 0.13,
        "quasi_exact_match": 0.15,
        "f1_score": 0.21,
        "f1_score_quasi": 0.24,
        "rouge1": 0.25,
        "rouge2": 0.08,
        "rougeL": 0.24,
        "bleu": 0.05,
    },
    "sft": {
        "exact_match": 0.77,
        "quasi_exact_match": 0.78,
        "f1_score": 0.79,
        "f1_score_quasi": 0.80,
        "rouge1": 0.81,
        "rouge2": 0.35,
        "rougeL": 0.81,
        "bleu": 0.41,
    },
    "rft": {
        "exact_match": 0.79,
        "quasi_exact_match": 0.80,
        "f1_score": 0.81,
        "f1_score_quasi": 0.82,
        "rouge1": 0.83,
        "rouge2": 0.36,
        "rougeL": 0.83,
        "bleu": 0.43,
    },
}
# Training that does not pay off: nothing reaches the gate's minimum score or gain.
FLAT_METRICS = {
    "baseline": IMPROVING_METRICS["baseline"],
    "sft": {k: round(v + 0.01, 4) for k, v in IMPROVING_METRICS["baseline"].items()},
    "rft": {k: round(v + 0.02, 4) for k, v in IMPROVING_METRICS["baseline"].items()},
}


@dataclass
class Faults:
    """What goes wrong in a rehearsal.

    - ``fail_at``: ``sft``/``rft`` (that training job fails), ``eval`` (the evaluation
      ``fail_eval_of`` fails: ``final`` (the job whose name or ``nova:stage``
      tag says final), or the evaluated model ``baseline``/``sft``/``rft``), ``import``/``deploy`` (the Bedrock model or
      deployment ends ``Failed``); ``preflight`` is a corrupt dataset row (see datasets).
    - ``throttle``: stage -> error code returned by that stage's first ``CreateTrainingJob``.
    - ``metrics``: evaluation metrics by evaluated model (``baseline``/``sft``/``rft``).
    """

    fail_at: str | None = None
    fail_eval_of: str = "final"
    throttle: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=lambda: IMPROVING_METRICS)

    def __post_init__(self) -> None:
        if self.fail_at is not None and self.fail_at not in STAGES:
            raise ValueError(f"unknown failure stage {self.fail_at!r}; expected one of {', '.join(STAGES)}")


def throttle_once(faults: Faults, stage: str, throttled: set[str]) -> str | None:
    """The error code that answers ``stage``'s first request (``Faults.throttle``), once per ``throttled`` set."""
    code = faults.throttle.get(stage)
    if not code or stage in throttled:
        return None
    throttled.add(stage)
    return code


def service_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
        },
        "simulated",
    )


def check_request(service: str, operation: str, params: dict) -> None:
    """Refuse a request the service would refuse, with every reason, as a ``ValidationException``."""
    problems = request_problems(service, operation, params)
    if problems:
        raise service_error("ValidationException", "; ".join(problems))
