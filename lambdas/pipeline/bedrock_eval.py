"""Evaluation on platform bedrock: the request of an evaluation attempt, and the EvaluateOnBedrock step.

Placeholder with the interface the pipeline calls (docs/architecture.md, "The job loop"): the evaluation
through Bedrock inference is not implemented in this module yet, so an evaluation stage on platform bedrock
fails with NotImplementedError, named in the stage's failure.
"""

from __future__ import annotations

from typing import Any

from lambdas.pipeline.schema import Plan, StageRecords


def evaluation_request(stage: str, plan: Plan, stages: StageRecords, job_name: str) -> dict[str, Any]:
    """The request of one evaluation attempt (which model to invoke, on which rows, where results go)."""
    raise NotImplementedError(f"evaluation on platform bedrock is not implemented yet ({stage}, {job_name})")


def evaluate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EvaluateOnBedrock: one step of an evaluation; returns its progress (``$.job.evaluation``)."""
    raise NotImplementedError("evaluation on platform bedrock is not implemented yet")
