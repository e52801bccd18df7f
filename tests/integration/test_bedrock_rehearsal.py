"""The Bedrock road rehearsed end to end: ``"platform": "bedrock"`` from datasets to a serving deployment.

The same synthesized definition and Lambda code as the SageMaker road's rehearsal, against the simulated
Bedrock customization service and Bedrock inference (``rehearsal/simulators/bedrock.py``,
``bedrock_runtime.py``): SFT and RFT as customization jobs, evaluations through Converse on the base model
and on provisional deployments of the custom models, and an injected RFT failure recorded and notified.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.synth import Synthesized
from rehearsal.runner import Result, Scenario, rehearse
from rehearsal.simulators.faults import Durations


def _rehearse(synthesized: Synthesized, out_dir: Path, **scenario: object) -> Result:
    return rehearse(Scenario(platform="bedrock", **scenario), synthesized=synthesized, out_dir=out_dir)  # type: ignore[arg-type]


def _only(items: list[dict]) -> dict:
    assert len(items) == 1, items
    return items[0]


@pytest.fixture(scope="module")
def served(app_synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Result:
    return _rehearse(app_synthesized, tmp_path_factory.mktemp("bedrock-happy"))


@pytest.fixture(scope="module")
def rft_failed(app_synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Result:
    return _rehearse(app_synthesized, tmp_path_factory.mktemp("bedrock-rft-failed"), fail_at="rft")


def test_the_bedrock_road_ends_with_a_serving_deployment_recorded_in_the_run(served: Result) -> None:
    assert served.status == "SUCCEEDED", (served.error, served.cause, served.function_errors)
    assert served.exit_code == 0 and served.problems == []
    assert served.run is not None and served.run["status"] == "SUCCEEDED"
    assert served.run["plan"]["platform"] == "bedrock"
    deployment = served.run["deployment"]
    active = {d["arn"]: d for d in served.deployments if d["status"] == "Active"}
    assert served.deployment_arn == deployment["arn"] and deployment["arn"] in active
    # the deployment serves the model the RFT customization job produced
    rft = _only([j for j in served.jobs if j["stage"] == "rft"])
    assert active[deployment["arn"]]["request"]["modelArn"] == rft["custom_model_arn"]
    assert served.run["stages"]["rft"]["customModelArn"] == rft["custom_model_arn"]


def test_no_stage_of_the_bedrock_road_counts_gpu_seconds(served: Result) -> None:
    # Bedrock bills customization and inference by tokens: no stage has GPU seconds, known or unknown
    assert served.run is not None
    for name, stage in served.run["stages"].items():
        if stage["status"] == "SUCCEEDED":
            assert stage["billableSeconds"] is None and stage["unknownBillingAttempts"] == 0, name


def test_sft_and_rft_ran_as_customization_jobs_and_rft_graded_rollouts_with_the_real_grader(served: Result) -> None:
    jobs = {j["stage"]: j for j in served.jobs}
    assert set(jobs) == {"sft", "rft"} and {j["service"] for j in served.jobs} == {"bedrock"}
    assert jobs["sft"]["request"]["customizationType"] == "FINE_TUNING"
    assert jobs["rft"]["request"]["customizationType"] == "REINFORCEMENT_FINE_TUNING"
    assert jobs["sft"]["minutes"] == Durations().bedrock_sft and jobs["rft"]["minutes"] == Durations().bedrock_rft
    assert jobs["rft"]["grader_calls"] == 1 and 0.0 <= jobs["rft"]["mean_reward"] <= 1.0
    assert served.rejected_job_requests == []


def test_each_evaluation_asked_every_row_of_its_model_and_scored_the_case_studys_quality(served: Result) -> None:
    asked = {
        model: [c for c in served.inference_calls if c["evaluates"] == model] for model in ("baseline", "sft", "rft")
    }
    assert {model: len(calls) for model, calls in asked.items()} == {"baseline": 12, "sft": 12, "rft": 12}
    assert all(c["correct"] is not None and c["error"] is None for calls in asked.values() for c in calls)
    assert served.run is not None
    table = served.run["metrics"]["table"]
    assert table["baseline"]["exact_match"] == pytest.approx(2 / 12)
    assert table["sft"]["exact_match"] == pytest.approx(9 / 12) == table["rft"]["exact_match"]
    assert served.run["gate"]["passed"] is True


def test_the_bedrock_run_is_notified_as_succeeded(served: Result) -> None:
    assert served.notifications and "SUCCEEDED" in served.notifications[-1]["subject"]


def test_an_injected_rft_failure_is_recorded_as_failed_and_notified(rft_failed: Result) -> None:
    assert rft_failed.status == "FAILED" and rft_failed.exit_code == 1
    assert rft_failed.run is not None and rft_failed.run["status"] == "FAILED"
    rft = _only([j for j in rft_failed.jobs if j["stage"] == "rft"])
    assert rft["status"] == "Failed" and "failure injected" in rft["failure_reason"]
    assert rft_failed.run["stages"]["rft"]["status"] == "FAILED"
    assert rft_failed.run["stages"]["sft"]["status"] == "SUCCEEDED"
    note = rft_failed.notifications[-1]
    assert "FAILED" in note["subject"] and "failure injected" in note["message"]
    assert rft_failed.deployment_arn is None and rft_failed.problems == []


def test_a_refused_customization_request_over_quota_is_retried_under_a_new_job_name(
    app_synthesized: Synthesized, tmp_path: Path
) -> None:
    result = _rehearse(app_synthesized, tmp_path, throttle={"rft": "ServiceQuotaExceededException"})
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    (refused,) = result.rejected_job_requests
    assert refused["stage"] == "rft" and refused["error"] == "ServiceQuotaExceededException"
    rft = _only([j for j in result.jobs if j["stage"] == "rft"])
    assert rft["status"] == "Completed" and rft["name"] != refused["name"] and rft["name"].endswith("-a2")
    failed = [e["taskFailedEventDetails"]["error"] for e in result.history if e["type"] == "TaskFailed"]
    assert "Bedrock.ServiceQuotaExceededException" in failed


def test_a_final_model_that_fails_to_answer_fails_the_run_and_leaves_no_deployment_behind(
    app_synthesized: Synthesized, tmp_path: Path
) -> None:
    result = _rehearse(app_synthesized, tmp_path, fail_at="eval")
    assert result.status == "FAILED" and result.exit_code == 1
    assert result.run is not None and result.run["stages"]["finalEval"]["status"] == "FAILED"
    assert "ModelErrorException" in result.run["stages"]["finalEval"]["error"]["cause"]
    assert {c["error"] for c in result.inference_calls if c["evaluates"] == "rft"} == {"ModelErrorException"}
    assert result.deployment_arn is None and result.problems == []
