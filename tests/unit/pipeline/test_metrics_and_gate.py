"""Collect metrics (baseline / SFT / RFT) and apply the quality gate."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.pipeline import gate as gates
from lambdas.pipeline import metrics as collected
from lambdas.pipeline.schema import Champion, CollectedMetrics, GateSettings, StageRecords
from tests.unit.pipeline import samples

GATE = {"metric": "exact_match", "minScore": 0.7, "minGainOverBaseline": 0.05, "mustBeatDeployed": True}


def collect_metrics(gate: dict, stages: dict) -> dict:
    """Collect metrics over JSON as it crosses Step Functions: the plan's gate and the stage records."""
    plan = samples.plan().model_copy(update={"gate": GateSettings.model_validate(gate)})
    return collected.collect_metrics(plan, StageRecords.model_validate(stages)).to_json()


def apply_gate(*, gate: dict, metrics: dict, champion: dict | None, eval_etag: str | None = None) -> dict:
    """Apply the gate over JSON; a champion record names its pipeline."""
    return gates.apply_gate(
        gate=GateSettings.model_validate(gate),
        metrics=CollectedMetrics.model_validate(metrics),
        champion=Champion.model_validate({"pipeline": "nova", **champion}) if champion is not None else None,
        eval_etag=eval_etag,
    ).to_json()


def _stages(*, rft: bool = True, baseline: float | None = 0.4, sft: float | None = 0.7, final: float = 0.8) -> dict:
    stages = samples.stages_after_training(rft=rft).to_json()
    stages["baselineEval"] = (
        {"status": "SUCCEEDED", "metrics": {"exact_match": baseline}} if baseline is not None else {"status": "SKIPPED"}
    )
    stages["sftEval"] = (
        {"status": "SUCCEEDED", "metrics": {"exact_match": sft}} if sft is not None and rft else {"status": "SKIPPED"}
    )
    stages["finalEval"] = {"status": "SUCCEEDED", "metrics": {"exact_match": final, "f1": 0.9}}
    return stages


def test_the_table_puts_the_final_evaluation_under_rft() -> None:
    result = collect_metrics(GATE, _stages())
    assert result["candidate"] == "rft" and result["metric"] == "exact_match"
    assert result["table"] == {
        "baseline": {"exact_match": 0.4},
        "sft": {"exact_match": 0.7},
        "rft": {"exact_match": 0.8, "f1": 0.9},
    }


def test_without_rft_the_final_evaluation_is_the_sft_column() -> None:
    result = collect_metrics(GATE, _stages(rft=False))
    assert result["candidate"] == "sft" and result["table"]["rft"] is None
    assert result["table"]["sft"] == {"exact_match": 0.8, "f1": 0.9}


def test_a_final_evaluation_without_metrics_is_an_error() -> None:
    stages = _stages()
    stages["finalEval"] = {"status": "PENDING"}
    with pytest.raises(ValueError, match="final evaluation"):
        collect_metrics(GATE, stages)


def _gate(champion=None, gate=GATE, **stage_values):
    return apply_gate(gate=gate, metrics=collect_metrics(gate, _stages(**stage_values)), champion=champion)


def test_a_good_candidate_passes_with_every_reason() -> None:
    decision = _gate()
    assert decision["passed"] is True
    assert decision["reasons"] == [
        "RFT exact_match 0.8 >= SFT 0.7 on the same evaluation set: the RFT model is the candidate",
        "exact_match 0.8 >= minScore 0.7",
        "gain over the baseline +0.4 (0.4 -> 0.8) >= minGainOverBaseline 0.05",
        "no model deployed by this pipeline yet",
    ]
    assert decision["candidate"] == "rft"


def test_an_rft_model_that_regresses_does_not_replace_the_sft_model() -> None:
    decision = _gate(sft=0.85, final=0.8)
    assert decision["candidate"] == "sft" and decision["passed"] is True
    assert decision["reasons"][0] == (
        "SFT exact_match 0.85 > RFT 0.8 on the same evaluation set: the SFT model is the candidate (the RFT model "
        "regressed)"
    )
    # every later check judges the SFT model's score
    assert "gain over the baseline +0.45 (0.4 -> 0.85)" in decision["reasons"][2]


def test_the_sft_candidate_is_what_the_import_takes() -> None:
    from lambdas.pipeline import bedrock

    class Recorder:
        request: dict = {}

        def create_custom_model(self, **request: object) -> dict:
            Recorder.request = request
            return {"modelArn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/abcdef123456"}

    stages = samples.stages_after_training()
    common: dict[str, Any] = {
        "bedrock": Recorder(),
        "plan": samples.plan(),
        "stages": stages,
        "role_arn": samples.IMPORT_ROLE_ARN,
    }
    model = bedrock.start_import(**common, kms_key_arn=samples.KMS_KEY_ARN, candidate="sft")
    assert model.checkpoint == samples.SFT_CHECKPOINT
    assert Recorder.request["modelSourceConfig"] == {"s3DataSource": {"s3Uri": samples.SFT_CHECKPOINT}}
    assert bedrock.start_import(**common, kms_key_arn=samples.KMS_KEY_ARN).checkpoint == samples.RFT_CHECKPOINT


def test_a_low_score_and_a_small_gain_are_both_reasons_to_reject() -> None:
    decision = _gate(baseline=0.6, sft=0.61, final=0.62)
    assert decision["passed"] is False
    assert decision["reasons"] == [
        "exact_match 0.62 < minScore 0.7",
        "gain over the baseline +0.02 (0.6 -> 0.62) < minGainOverBaseline 0.05",
    ]


def test_the_deployed_champion_must_be_beaten() -> None:
    champion = {"runId": "run-0", "metrics": {"exact_match": 0.85}, "modelArn": "arn:m", "deploymentArn": "arn:d"}
    decision = _gate(champion=champion)
    assert decision["passed"] is False
    assert decision["reasons"] == ["exact_match 0.8 <= 0.85 of the deployed model of run run-0"]
    assert decision["champion"]["runId"] == "run-0"
    assert _gate(champion={**champion, "metrics": {"exact_match": 0.75}})["passed"] is True


def test_a_champion_is_ignored_when_not_required() -> None:
    champion = {"runId": "run-0", "metrics": {"exact_match": 0.99}}
    assert _gate(champion=champion, gate={**GATE, "mustBeatDeployed": False})["passed"] is True


def test_a_champion_measured_on_another_dataset_version_fails_the_gate_closed() -> None:
    champion = {"runId": "run-0", "metrics": {"exact_match": 0.5}, "evalDatasetEtag": "old"}
    metrics = collect_metrics(GATE, _stages())
    decision = apply_gate(gate=GATE, metrics=metrics, champion=champion, eval_etag="new")
    assert decision["passed"] is False
    (reason,) = decision["reasons"]
    assert "another version of the evaluation dataset (ETag old, this run: ETag new)" in reason
    same = apply_gate(gate=GATE, metrics=metrics, champion=champion, eval_etag="old")
    assert same["passed"] is True


def test_a_champion_without_the_gate_metric_fails_the_gate_closed() -> None:
    champion = {"runId": "run-0", "metrics": {"rouge1": 0.2}, "evalDatasetEtag": "e"}
    decision = apply_gate(gate=GATE, metrics=collect_metrics(GATE, _stages()), champion=champion, eval_etag="e")
    assert decision["passed"] is False
    assert decision["reasons"] == [
        "the deployed model of run run-0 has no recorded exact_match (recorded: rouge1): cannot compare "
        "(champion metric missing)"
    ]


def test_without_a_baseline_the_gain_check_is_skipped_and_said_so() -> None:
    decision = _gate(baseline=None, gate={**GATE, "minGainOverBaseline": 0.0})
    assert decision["passed"] and "no baseline evaluation to compare with" in decision["reasons"]


BASELINE_JOB = {
    "stage": "baselineEval",
    "name": "nova-run-1-0b9d6cbe-eval-base-a1",
    "attempt": 1,
    "startedAt": "2026-11-21T10:01:00Z",
    "errors": [],
    "request": samples.job_request("baselineEval", instanceCount=1),
    "lastError": {
        "Error": "States.TaskFailed",
        "Cause": '{"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: CUDA OOM"}',
    },
}


def _noted_failure(stage: str, job: dict) -> dict:
    """What the state machine's "Describe the ... failure" Pass state writes into the stage."""
    return {"status": "FAILED", "failure": {"stage": stage, "job": job}, "endedAt": "2026-11-21T10:30:00Z"}


def _with_failed_baseline() -> dict:
    stages = _stages()
    stages["baselineEval"] = _noted_failure("baselineEval", BASELINE_JOB)
    return stages


def test_a_failed_baseline_fails_the_gain_check_closed_and_says_why() -> None:
    metrics = collect_metrics(GATE, _with_failed_baseline())
    assert metrics["table"]["baseline"] is None
    assert (
        "CUDA OOM" in metrics["failed"]["baseline"]
        and "nova-run-1-0b9d6cbe-eval-base-a1" in metrics["failed"]["baseline"]
    )
    decision = apply_gate(gate=GATE, metrics=metrics, champion=None)
    assert decision["passed"] is False
    (reason,) = decision["reasons"]
    assert reason.startswith("the baseline evaluation failed (") and "CUDA OOM" in reason
    assert reason.endswith("cannot compare with minGainOverBaseline 0.05 (baseline missing)")
    # the other checks ran normally and passed
    assert [c["rule"] for c in decision["checks"] if c["passed"]] == ["bestCandidate", "minScore", "mustBeatDeployed"]


def test_a_failed_baseline_does_not_matter_when_no_gain_is_required() -> None:
    gate = {**GATE, "minGainOverBaseline": 0.0}
    decision = apply_gate(gate=gate, metrics=collect_metrics(gate, _with_failed_baseline()), champion=None)
    assert decision["passed"] is True
    assert any(r.startswith("the baseline evaluation failed (") for r in decision["reasons"])


def test_a_baseline_without_the_metric_fails_a_required_gain_closed() -> None:
    stages = _stages()
    stages["baselineEval"] = {"status": "SUCCEEDED", "metrics": {"rouge1": 0.3}}
    decision = apply_gate(gate=GATE, metrics=collect_metrics(GATE, stages), champion=None)
    assert decision["passed"] is False
    assert "the baseline evaluation reported no exact_match (reported: rouge1)" in decision["reasons"][0]


def test_a_failed_sft_evaluation_leaves_its_column_empty_and_the_gate_judges_the_final_evaluation() -> None:
    stages = _stages()
    stages["sftEval"] = _noted_failure(
        "sftEval", {**BASELINE_JOB, "stage": "sftEval", "name": "nova-run-1-0b9d6cbe-eval-sft-a1"}
    )
    metrics = collect_metrics(GATE, stages)
    assert metrics["table"]["sft"] is None and set(metrics["failed"]) == {"sft"}
    assert apply_gate(gate=GATE, metrics=metrics, champion=None)["passed"] is True


def test_a_metric_the_evaluation_does_not_report_rejects_with_the_reported_names() -> None:
    decision = _gate(gate={**GATE, "metric": "rouge1"})
    assert decision["passed"] is False
    assert decision["reasons"] == ["rouge1 is not among the final evaluation's metrics (reported: exact_match, f1)"]
