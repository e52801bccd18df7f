"""The metrics table of a run: baseline / SFT / RFT side by side.

- ``baseline``: the baseline evaluation (base model);
- ``sft``: the SFT evaluation, or the final evaluation when RFT did not run (the final
  evaluation then judges the SFT checkpoint);
- ``rft``: the final evaluation when the candidate is an RFT checkpoint.

``candidate`` names the column of the model the gate judges and Bedrock imports. A failed
baseline or SFT evaluation (it runs beside training and does not fail the run) leaves its
column empty and is named in ``failed``.
"""

from __future__ import annotations

from lambdas.pipeline import genqa
from lambdas.pipeline.jobs import candidate_checkpoint
from lambdas.pipeline.record import noted_failure_text
from lambdas.pipeline.schema import CollectedMetrics, MetricsTable, Plan, StageRecords

# The aggregate metrics of a gen_qa evaluation, as named after normalization
# (:func:`lambdas.pipeline.outputs.metric_name`: lower case, ``em`` -> ``exact_match``...).
# ``gate.metric`` of a gen_qa run must be one of them. rft_eval reports ``aggregate_reward_score``
# (the mean reward, :data:`lambdas.pipeline.outputs.REWARD_METRIC`) and the mean of each of the
# grader's own ``metrics_list`` names: its runs must name ``gate.metric`` explicitly.
# The Bedrock road computes the same ones itself (lambdas.pipeline.genqa).
GEN_QA_METRICS = (*genqa.ROW_METRICS, genqa.BLEU)


def _metrics(stages: StageRecords, stage: str) -> dict[str, float] | None:
    record = stages.of(stage)
    if record.status != "SUCCEEDED":
        return None
    return dict(record.metrics or {}) or None


def _failed_beside_training(stages: StageRecords) -> dict[str, str]:
    """Column -> why, for the evaluations beside training that failed."""
    return {
        column: text
        for column, stage in (("baseline", "baselineEval"), ("sft", "sftEval"))
        if (text := noted_failure_text(stage, stages.of(stage))) is not None
    }


def collect_metrics(plan: Plan, stages: StageRecords) -> CollectedMetrics:
    """``{"metric", "candidate", "table": {"baseline", "sft", "rft"}, "failed": {column: why}}`` of the
    evaluations that ran; ``failed`` names the evaluations beside training that failed (their column is None)."""
    candidate, _ = candidate_checkpoint(stages)
    final = _metrics(stages, "finalEval")
    if final is None:
        raise ValueError("the final evaluation reported no metrics")
    table = MetricsTable(
        baseline=_metrics(stages, "baselineEval"),
        sft=final if candidate == "sft" else _metrics(stages, "sftEval"),
        rft=final if candidate == "rft" else None,
    )
    failed = _failed_beside_training(stages)
    return CollectedMetrics(
        metric=plan.gate.metric, candidate="rft" if candidate == "rft" else "sft", table=table, failed=failed
    )


def finished_metrics(plan: Plan, stages: StageRecords) -> CollectedMetrics | None:
    """The table of a run that failed before its final evaluation: the evaluations that finished (baseline,
    SFT) keep their column, so what was paid for shows in the record; None when none finished."""
    table = MetricsTable(baseline=_metrics(stages, "baselineEval"), sft=_metrics(stages, "sftEval"))
    if table.baseline is None and table.sft is None:
        return None
    failed = _failed_beside_training(stages)
    return CollectedMetrics(metric=plan.gate.metric, candidate="sft", table=table, failed=failed)
