"""The real pipeline, rehearsed: the synthesized definition, the project's Lambda code, simulated SageMaker/Bedrock.

One synthesis per session (``app_synthesized``); each test runs one scenario on
fresh simulated AWS through the same harness as ``python -m rehearsal``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR
from offline.synth import Synthesized
from rehearsal import __main__ as cli
from rehearsal.runner import Result, Scenario, rehearse, rehearse_runs
from rehearsal.simulators.faults import Durations

PREVIOUS_SFT_CHECKPOINT = "s3://customer-escrow-123456789012-smtj-0a1b2c3d/nova-earlier-run-sft-a1/checkpoint/"


def _rehearse(synthesized: Synthesized, out_dir: Path, **scenario: Any) -> Result:
    return rehearse(Scenario(**scenario), synthesized=synthesized, out_dir=out_dir)


def _model_requests(result: Result) -> list[dict]:
    return [m["request"] for m in result.models]


def _only(jobs: list[dict]) -> dict:
    assert len(jobs) == 1, [j["name"] for j in jobs]
    return jobs[0]


def _evaluation_of(result: Result, model: str) -> dict:
    return _only([j for j in result.jobs if j["kind"] == "evaluation" and j["evaluates"] == model])


def _operations(result: Result) -> list[str]:
    """The Bedrock model calls of the run, in order (status checks left out)."""
    return [
        c["operation"] for c in result.bedrock_calls if c["operation"] in ("CreateCustomModel", "DeleteCustomModel")
    ]


def _run_text(result: Result) -> str:
    assert result.run is not None, "no run.json"
    return json.dumps(result.run)


# -- happy path ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def happy(app_synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Result:
    return _rehearse(app_synthesized, tmp_path_factory.mktemp("happy"))


def test_happy_path_deploys_and_records_the_model_and_deployment(happy: Result) -> None:
    assert happy.status == "SUCCEEDED", (happy.error, happy.cause, happy.function_errors)
    assert happy.exit_code == 0
    assert happy.problems == []
    (model,) = happy.models
    (deployment,) = happy.deployments
    assert model["status"] == "Active" and deployment["status"] == "Active"
    run = _run_text(happy)
    assert model["arn"] in run and deployment["arn"] in run
    assert happy.run_path is not None and happy.run_path.exists()
    assert happy.report_path is not None and happy.report_path.exists()


def test_happy_path_chains_checkpoints_sft_to_rft_to_import(happy: Result) -> None:
    sft = _only(happy.job("sft"))
    rft = _only(happy.job("rft"))
    assert rft["hyper_parameters"]["base_model_location"] == sft["checkpoint"]
    (request,) = _model_requests(happy)
    assert request["modelSourceConfig"]["s3DataSource"]["s3Uri"] == rft["checkpoint"]
    # and the final evaluation scored the RFT checkpoint, the SFT evaluation the SFT one
    assert _evaluation_of(happy, "rft")["hyper_parameters"]["base_model_location"] == rft["checkpoint"]
    assert _evaluation_of(happy, "sft")["hyper_parameters"]["base_model_location"] == sft["checkpoint"]
    assert "base_model_location" not in _evaluation_of(happy, "baseline")["hyper_parameters"]


def test_happy_path_runs_evaluations_beside_training(happy: Result) -> None:
    from rehearsal.progress import critical_path

    path = [span.label for span in critical_path(happy.spans)]
    # SFT + RFT + max(final eval, import) + deploy: the import runs beside the final evaluation
    assert path == ["SFT", "RFT", "final eval", "deploy"]
    assert 160 * 60 <= happy.simulated_seconds < 175 * 60
    baseline, sft = _evaluation_of(happy, "baseline"), _only(happy.job("sft"))
    assert baseline["start_minute"] == pytest.approx(sft["start_minute"], abs=1)


def test_the_import_starts_before_the_final_evaluation_ends_and_the_deployment_after_both(happy: Result) -> None:
    spans = {span.label: span for span in happy.spans}
    imported, final, deploy = spans["import"], spans["final eval"], spans["deploy"]
    assert imported.start < final.end and imported.start >= spans["RFT"].end
    assert deploy.start >= max(imported.end, final.end)


def test_happy_path_grades_rollouts_with_the_real_grader(happy: Result) -> None:
    rft = _only(happy.job("rft"))
    assert rft["grader_calls"] == 1
    assert 0.0 <= rft["mean_reward"] <= 1.0


def test_an_rft_eval_run_is_judged_on_the_graders_per_sample_rewards(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    gate = {"metric": "aggregate_reward_score", "minScore": 0.3, "minGainOverBaseline": 0.2}
    result = _rehearse(app_synthesized, out_dir, run_input={"evaluation": {"task": "rft_eval"}, "gate": gate})
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    assert result.run is not None and result.run["status"] == "SUCCEEDED"
    evaluations = [j for j in result.jobs if j["kind"] == "evaluation"]
    assert {j["evaluates"] for j in evaluations} == {"baseline", "sft", "rft"}
    for job in evaluations:
        # the grader is named in the recipe alone, and every row was scored by the real grader
        assert not {"eval_lambda_arn", "reward_lambda_arn"} & set(job["hyper_parameters"]), job["hyper_parameters"]
        assert job["grader_calls"] == 2  # twelve rows in batches of eight
    stages = result.run["stages"]
    for stage in ("baselineEval", "sftEval", "finalEval"):
        metrics, stats = stages[stage]["metrics"], stages[stage]["metricStats"]
        # the mean reward and the mean of each metrics_list name of the classification grader
        assert {"aggregate_reward_score", "label_match"} <= set(metrics) == set(stats)
        assert stats["aggregate_reward_score"]["n"] == stats["label_match"]["n"] == 12
        assert stats["aggregate_reward_score"]["stderr"] > 0
    table = result.run["metrics"]["table"]
    assert table["rft"]["aggregate_reward_score"] - table["baseline"]["aggregate_reward_score"] >= 0.2
    assert table["rft"]["label_match"] > table["baseline"]["label_match"]
    assert result.run["gate"]["passed"] is True and result.run["gate"]["metric"] == "aggregate_reward_score"


def test_happy_path_sends_the_notification(happy: Result) -> None:
    assert happy.notifications, "no notification"
    subject = happy.notifications[-1]["subject"]
    assert "SUCCEEDED" in subject


# -- injected failures --------------------------------------------------------------------------

# Injected failure -> (the stage run.json's error names, what its cause says about the injected fault).
_RECORDED_FAILURES = {
    "preflight": ("preflight", "not valid JSON"),
    "sft": ("sft", "CUDA out of memory while training"),
    "rft": ("rft", "CUDA out of memory while training"),
    "eval": ("finalEval", "CUDA out of memory while evaluating"),
    "import": ("import", "checkpoint validation error"),
    "deploy": ("deploy", "insufficient capacity"),
}


@pytest.mark.parametrize("stage", list(_RECORDED_FAILURES))
def test_an_injected_failure_ends_the_run_failed_at_its_stage(
    stage: str, app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, fail_at=stage)
    assert result.status == "FAILED"
    assert result.exit_code != 0
    assert result.run is not None and result.run.get("status") == "FAILED"
    recorded_stage, cause = _RECORDED_FAILURES[stage]
    assert result.run["error"]["stage"] == recorded_stage, result.run["error"]
    assert cause in result.run["error"]["cause"], result.run["error"]
    # nothing half-created: no job still running, every Bedrock resource recorded
    assert result.problems == []
    assert result.notifications and "FAILED" in result.notifications[-1]["subject"]
    assert not any(d["status"] == "Active" for d in result.deployments)


def test_throttled_training_job_is_retried_with_a_new_job_name(app_synthesized: Synthesized, out_dir: Path) -> None:
    result = _rehearse(
        app_synthesized, out_dir, throttle={"sft": "ThrottlingException", "rft": "ResourceLimitExceeded"}
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    rejected = {r["stage"]: r["name"] for r in result.rejected_job_requests}
    assert set(rejected) == {"sft", "rft"}
    for stage in ("sft", "rft"):
        job = _only(result.job(stage))
        assert job["status"] == "Completed"
        assert job["name"] != rejected[stage]
        # the refused attempt never ran a job: its time is unknown, counted 0, and only the job that ran is billed
        record = result.run["stages"][stage] if result.run else {}
        assert record["billableSeconds"] == round(job["minutes"] * 60)
        assert record["unknownBillingAttempts"] == 1
    assert result.exit_code == 0


def test_a_failed_rft_attempt_is_paid_for_in_the_record_the_report_and_the_notification(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, fail_at="rft")
    assert result.run is not None
    rft, job = result.run["stages"]["rft"], _only(result.job("rft"))
    assert job["status"] == "Failed"
    # the failed job's billable time came from the caught cause (its description), at the catalog price
    assert rft["billableSeconds"] == round(job["minutes"] * 60) > 0
    assert rft["unknownBillingAttempts"] == 0
    price = INSTANCE_PRICE_USD_PER_HOUR[rft["instanceType"]]
    assert rft["actualUsd"] == round(rft["billableSeconds"] * rft["instanceCount"] * price / 3600, 2)
    ran = [r for r in result.run["stages"].values() if r.get("billableSeconds") is not None]
    total = f"actual ${sum(r['actualUsd'] for r in ran):,.2f}"
    assert total in result.notifications[-1]["message"]
    assert result.report_path is not None and total in result.report_path.read_text()


def test_a_gpu_quota_too_small_for_one_job_fails_preflight_before_any_job(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, quotas={"ml.p5.48xlarge": 2})
    assert result.status == "FAILED" and result.exit_code == 1
    assert result.jobs == [] and result.models == []
    assert result.run is not None and result.run["error"]["stage"] == "preflight"
    cause = json.dumps(result.run["error"])
    assert "ml.p5.48xlarge for training job usage" in cause and "alone needs 4 x ml.p5.48xlarge" in cause


def test_jobs_contending_for_a_gpu_quota_wait_for_each_other_and_the_run_completes(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    # 4 x ml.p5.48xlarge: SFT (4) and RFT (4) each need the whole quota, so they and the evaluations beside them
    # take turns; 50-minute evaluations outlast the plan's 4 attempts (5 + 10 + 20 minutes of backoff)
    result = _rehearse(app_synthesized, out_dir, quotas={"ml.p5.48xlarge": 4}, durations=Durations(eval=50))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.exit_code == 0
    assert result.run is not None
    assert all(result.run["stages"][s]["status"] == "SUCCEEDED" for s in result.run["stages"])
    # preflight warned, and SageMaker refused the jobs that would have exceeded the quota
    [warning] = result.run["preflight"]["quotas"]["warnings"]
    assert "need 5 x ml.p5.48xlarge together" in warning
    assert result.report_path is not None and "need 5 x ml.p5.48xlarge together" in result.report_path.read_text()
    assert any(r["error"] == "ResourceLimitExceeded" for r in result.rejected_job_requests)
    attempts = [int(j["name"].rsplit("-a", 1)[1]) for j in result.jobs]
    assert max(attempts) > result.run["plan"]["maxJobAttempts"]
    # never more instances at once than the quota
    spans = [
        (j["start_minute"], j["start_minute"] + j["minutes"], j["request"]["ResourceConfig"]["InstanceCount"])
        for j in result.jobs
    ]
    for start, end, _ in spans:
        assert sum(n for s, e, n in spans if s < end and start < e) <= 4


def test_gate_rejection_deletes_the_candidate_imported_beside_the_final_evaluation(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(
        app_synthesized, out_dir, gate_reject=True, run_input={"gate": {"minScore": 0.7, "minGainOverBaseline": 0.05}}
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # imported beside the final evaluation, deleted once the gate rejected it, never deployed
    assert result.models == [] and result.deployments == []
    assert _operations(result) == ["CreateCustomModel", "DeleteCustomModel"]
    assert result.run is not None and result.run.get("status") == "GATE_REJECTED"
    assert result.exit_code == 2
    assert "GATE REJECTED" in result.notifications[-1]["subject"]


def test_an_rft_model_below_the_sft_model_is_deleted_and_the_sft_checkpoint_imported_and_deployed(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, final_gain=-0.2)
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    assert result.problems == []
    # the RFT model imported beside the final evaluation is deleted; only the SFT model is left and served
    assert _operations(result)[:3] == ["CreateCustomModel", "DeleteCustomModel", "CreateCustomModel"]
    (sft_model,) = result.models
    assert sft_model["request"]["modelSourceConfig"]["s3DataSource"]["s3Uri"] == _only(result.job("sft"))["checkpoint"]
    (deployment,) = result.deployments
    assert deployment["request"]["modelArn"] == sft_model["arn"]
    assert result.run is not None and result.run["model"]["arn"] == sft_model["arn"]


def test_resume_from_rft_reuses_the_given_sft_checkpoint(app_synthesized: Synthesized, out_dir: Path) -> None:
    result = _rehearse(
        app_synthesized,
        out_dir,
        run_input={
            "resumeFrom": {"stage": "rft", "run": "earlier-run-5e1f00d2", "checkpoint": PREVIOUS_SFT_CHECKPOINT}
        },
        previous_checkpoints={PREVIOUS_SFT_CHECKPOINT: "sft"},
        previous_run="earlier-run-5e1f00d2",
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.run is not None and result.run["plan"]["resumeFrom"]["run"] == "earlier-run-5e1f00d2"
    assert result.job("sft") == []
    rft = _only(result.job("rft"))
    assert rft["hyper_parameters"]["base_model_location"] == PREVIOUS_SFT_CHECKPOINT
    (request,) = _model_requests(result)
    assert request["modelSourceConfig"]["s3DataSource"]["s3Uri"] == rft["checkpoint"]


def test_resume_from_a_checkpoint_no_run_of_this_pipeline_recorded_stops_in_the_first_state(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    # the simulated SageMaker knows the checkpoint, but no run.json records it and another account owns it
    foreign = "s3://customer-escrow-111122223333-smtj-0a1b2c3d/nova-earlier-run-sft-a1/checkpoint/"
    result = _rehearse(
        app_synthesized,
        out_dir,
        run_input={"resumeFrom": {"stage": "rft", "checkpoint": foreign}},
        previous_checkpoints={PREVIOUS_SFT_CHECKPOINT: "sft"},
    )
    assert result.status == "FAILED"
    assert result.jobs == []
    entered = result.states_entered()
    assert "Validate run" in entered and "Preflight checks" not in entered
    cause = result.cause or ""
    assert "resumeFrom.checkpoint: " + foreign in cause and "not of this account 123456789012" in cause
    assert "resumeFrom.run: required" in cause


def test_skipping_rft_imports_the_sft_checkpoint(app_synthesized: Synthesized, out_dir: Path) -> None:
    result = _rehearse(app_synthesized, out_dir, run_input={"stages": {"rft": False}})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.job("rft") == []
    sft = _only(result.job("sft"))
    (request,) = _model_requests(result)
    assert request["modelSourceConfig"]["s3DataSource"]["s3Uri"] == sft["checkpoint"]
    assert "RFT skipped" in result.states_entered()


def test_skipping_baseline_and_deploy_runs_no_baseline_job_and_no_import(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, run_input={"stages": {"baselineEval": False, "deploy": False}})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert [j for j in result.jobs if j["evaluates"] == "baseline"] == []
    assert result.models == []
    assert result.exit_code == 2  # succeeded, nothing deployed


def test_a_bad_run_input_is_rejected_in_the_first_state_with_every_problem(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    bad = {
        "datasets": {"sft": "s3://somewhere-else/data.jsonl"},
        "model": "nova-9",
        "stages": {"sft": "yes"},
        "colour": "blue",
    }
    result = _rehearse(app_synthesized, out_dir, replace_input=bad)
    assert result.status == "FAILED"
    assert result.jobs == []
    entered = result.states_entered()
    assert "Validate run" in entered and "Preflight checks" not in entered
    text = (result.cause or "") + _run_text(result)
    for field in ("colour", "model", "stages.sft", "datasets.sft"):
        assert field in text, field


# -- the command --------------------------------------------------------------------------------


def test_the_command_prints_the_paths_last_and_exits_non_zero_on_failure(
    app_synthesized: Synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("REHEARSAL_OUT", str(tmp_path / "cli"))
    monkeypatch.setenv("REHEARSAL_FAIL_AT", "deploy")
    monkeypatch.setattr(
        cli, "rehearse_runs", lambda scenarios, **kw: rehearse_runs(scenarios, synthesized=app_synthesized, **kw)
    )
    code = cli.main([])  # the options come from the environment here, not from pytest's command line
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert lines[-1].startswith("Report: ") and lines[-1].endswith("report.html")
    assert lines[-2].startswith("Run record: ") and lines[-2].endswith("run.json")
    assert (tmp_path / "cli" / "run.json").exists()
    assert any("✗" in line and "Deployment failed" in line for line in lines)


@pytest.mark.parametrize("value", ["four", "-1", "2.5"])
def test_the_command_rejects_a_gpu_quota_that_is_not_a_whole_number(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("REHEARSAL_GPU_QUOTA", value)
    assert cli.main([]) == 64
    assert f"REHEARSAL_GPU_QUOTA={value!r}" in capsys.readouterr().err


def test_the_command_passes_the_gpu_quota_to_the_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Scenario] = []

    class Stop(Exception):
        pass

    def capture(scenarios: list[Scenario], **kwargs: object) -> Result:
        seen.extend(scenarios)
        raise Stop

    monkeypatch.setattr(cli, "rehearse_runs", capture)
    for value, expected in (("4", 4), ("", 8)):
        monkeypatch.setenv("REHEARSAL_GPU_QUOTA", value)
        with pytest.raises(Stop):
            cli.main([])
        assert seen[-1].quotas == {"ml.p5.48xlarge": expected}


# -- evaluations beside training fail without stopping it ----------------------------------------


def test_a_failed_baseline_evaluation_lets_training_finish_and_the_gate_fails_closed(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(
        app_synthesized,
        out_dir,
        fail_at="eval",
        fail_eval_of="baseline",
        run_input={"gate": {"minGainOverBaseline": 0.05}},
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    assert _evaluation_of(result, "baseline")["status"] == "Failed"
    # SFT and RFT were not stopped: both completed, and the final evaluation judged RFT
    assert _only(result.job("sft"))["status"] == "Completed"
    assert _only(result.job("rft"))["status"] == "Completed"
    assert _evaluation_of(result, "rft")["status"] == "Completed"
    run = result.run
    assert run is not None and run["status"] == "GATE_REJECTED"
    baseline = run["stages"]["baselineEval"]
    assert baseline["status"] == "FAILED" and "CUDA out of memory" in baseline["error"]["cause"]
    assert run["stages"]["rft"]["status"] == "SUCCEEDED" and run["stages"]["finalEval"]["status"] == "SUCCEEDED"
    reasons = run["gate"]["reasons"]
    assert any("baseline evaluation failed" in r and "baseline missing" in r for r in reasons), reasons
    assert result.models == [] and result.exit_code == 2
    assert result.problems == []


def test_a_failed_sft_evaluation_lets_rft_finish_and_the_run_deploys(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(app_synthesized, out_dir, fail_at="eval", fail_eval_of="sft")
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    assert _evaluation_of(result, "sft")["status"] == "Failed"
    assert _only(result.job("rft"))["status"] == "Completed"
    run = result.run
    assert run is not None and run["status"] == "SUCCEEDED"
    assert run["stages"]["sftEval"]["status"] == "FAILED" and run["stages"]["sftEval"]["error"]["cause"]
    assert run["metrics"]["table"]["sft"] is None and "sft" in run["metrics"]["failed"]
    assert result.exit_code == 0 and result.deployment_arn


# -- one run at a time ----------------------------------------------------------------------------


def test_every_end_releases_the_run_lock(happy: Result) -> None:
    # The execution took the lock in its first state; its end event, delivered to the notify function, freed it.
    assert happy.states_entered()[0] == "Take run lock"
    assert happy.lock_holder_after is None


def test_a_second_run_while_another_holds_the_lock_is_refused_recorded_and_notified(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    # Given another execution of the pipeline holding the run lock (a console start, or a stale listing)
    other = "arn:aws:states:us-east-1:123456789012:execution:NovaCustomization-PipelineStateMachine:other-run"
    # When a second execution starts
    result = _rehearse(app_synthesized, out_dir, lock_held_by=other)
    # Then it ends in its first state, started no job, and leaves the other run's lock alone
    assert result.status == "FAILED" and result.error == "RunLockHeld", (result.error, result.cause)
    assert result.jobs == [] and result.models == []
    assert result.lock_holder_after == other
    # ... and it is recorded and notified as REFUSED
    assert result.run is not None and result.run["status"] == "REFUSED"
    (note,) = result.notifications
    assert "REFUSED" in note["subject"]
    assert result.exit_code == 1


# -- several runs against one account ---------------------------------------------------------------


def test_two_runs_share_one_deployment_arn_that_serves_the_second_runs_model_and_rolls_back(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    first, second = rehearse_runs(
        [Scenario(), Scenario(final_gain=0.02)], synthesized=app_synthesized, out_dir=out_dir, rollback=True
    )

    assert (first.exit_code, second.exit_code) == (0, 0), (second.error, second.cause, second.function_errors)
    assert first.problems == [] and second.problems == []
    assert first.run is not None and second.run is not None
    created, updated = first.run["deployment"], second.run["deployment"]
    assert created["action"] == "created" and updated["action"] == "updated"
    assert updated["arn"] == created["arn"] == first.deployment_arn == second.deployment_arn
    assert updated["previousModelArn"] == created["modelArn"] == first.run["model"]["arn"]
    assert updated["modelArn"] == second.run["model"]["arn"] != created["modelArn"]
    # the challenger beat the champion on the deployed model's recorded metric
    assert any("of the deployed model of run" in reason for reason in second.run["gate"]["reasons"])
    assert [op["operation"] for op in second.bedrock_calls].count("UpdateCustomModelDeployment") == 1
    assert "CreateCustomModelDeployment" not in [op["operation"] for op in second.bedrock_calls]
    # the rollback moved the same deployment back to the first run's model
    assert second.rollback == {
        "deploymentArn": created["arn"],
        "fromModel": updated["modelArn"],
        "toModel": created["modelArn"],
        "champion": first.run["runId"],
        "serves": created["modelArn"],
    }
    assert (out_dir / "run-1" / "run.json").exists() and (out_dir / "run-2" / "run.json").exists()


def test_a_failed_rft_keeps_the_sft_evaluation_and_its_resume_input_continues_in_the_next_run(
    app_synthesized: Synthesized, out_dir: Path
) -> None:
    def resume_input(failed: Result) -> dict:
        offered = [line for line in failed.notifications[-1]["message"].splitlines() if '"resumeFrom"' in line]
        (resume,) = [json.loads(line) for line in offered]
        return dict(resume)

    failed, resumed = rehearse_runs(
        [Scenario(fail_at="rft"), Scenario(input_from=resume_input)], synthesized=app_synthesized, out_dir=out_dir
    )

    assert failed.run is not None and failed.status == "FAILED"
    sft_eval = failed.run["stages"]["sftEval"]
    assert sft_eval["status"] == "SUCCEEDED" and sft_eval["jobName"] and sft_eval["metrics"]
    assert failed.run["metrics"]["table"]["sft"] == sft_eval["metrics"]
    assert failed.run["metrics"]["table"]["baseline"]
    assert resumed.run_input["resumeFrom"] == {
        "stage": "rft",
        "checkpoint": failed.run["stages"]["sft"]["checkpoint"],
        "run": failed.run["runId"],
    }
    # the next run continues from the SFT checkpoint: no new SFT job, and it deploys
    assert resumed.exit_code == 0, (resumed.error, resumed.cause, resumed.function_errors)
    assert not [j for j in resumed.jobs if j["stage"] == "sft"]
