"""The ASL file itself: generated from its description, runbook state names, Retry/Catch everywhere, one job
loop per stage, phases from the stage catalogue, payloads that match the handlers, selectors that match what the
handlers return, and evaluations off the critical path."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from lambdas.pipeline import bedrock, gate, handlers, metrics, naming, record, retry
from lambdas.pipeline.schema import JobAttempt, Plan, RunState, StageRecord
from offline.asl import iter_states, load_definition, longest_path
from stepfunctions.pipeline import DEFINITION_FILE, ENABLED, EVALUATION_PROGRESS, FUNCTIONS, render, title
from tests.unit.pipeline import samples
from tests.unit.pipeline.test_bedrock import FakeBedrock
from tests.unit.pipeline.test_jobs import FakeSageMaker
from tests.unit.pipeline.test_record import MODEL

DEFINITION = load_definition()
STATES = dict(iter_states(DEFINITION))
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
HANDLER_OF = {f"${{{function.construct_id}FunctionArn}}": function.handler for function in FUNCTIONS}
# Case-study durations in minutes (ISSUE: eval 20, SFT 40, RFT 90, import 15, deploy 10).
CASE_STUDY = {
    "Run baseline evaluation job": 20,
    "Run SFT training job": 40,
    "Run SFT evaluation job": 20,
    "Run RFT training job": 90,
    "Run final evaluation job": 20,
    "Wait for candidate import": 15,
    "Wait for deployment": 10,
}
FINAL_PHASE = "Evaluate and import the candidate"


def _lambda_tasks() -> list[tuple[str, dict]]:
    return [(n, s) for n, s in STATES.items() if s.get("Resource") == "arn:aws:states:::lambda:invoke"]


def _invokes(state: dict, construct_id: str) -> bool:
    return state.get("Parameters", {}).get("FunctionName") == f"${{{construct_id}FunctionArn}}"


def test_the_committed_file_is_what_the_description_generates() -> None:
    # `make asl` regenerates it; a hand edit of the file, or a description change without `make asl`, fails here
    assert DEFINITION_FILE.read_text() == render()


def test_the_definition_is_jsonpath_and_reads_like_a_runbook() -> None:
    assert DEFINITION["QueryLanguage"] == "JSONPath"
    for name in (
        "Validate run",
        "Preflight checks",
        "Train and baseline",
        "Prepare SFT job",
        "Run SFT training job",
        "Resolve SFT checkpoint",
        "Evaluate SFT and train RFT",
        "Run final evaluation job",
        "Collect metrics",
        "Apply quality gate",
        "Import model into Bedrock",
        "Wait for model import",
        "Deploy model on demand",
        "Record run",
        "Record failed run",
    ):
        assert name in STATES, name
    assert DEFINITION["StartAt"] == "Take run lock" and STATES["Take run lock"]["Next"] == "Start run"


def test_every_task_and_parallel_catches_everything() -> None:
    for name, state in STATES.items():
        if state["Type"] in ("Task", "Parallel"):
            catchers = state.get("Catch", [])
            assert any("States.ALL" in c["ErrorEquals"] for c in catchers), name


def test_every_lambda_task_retries_service_errors_with_backoff() -> None:
    for name, state in _lambda_tasks():
        (retry,) = state["Retry"]
        assert set(retry["ErrorEquals"]) == LAMBDA_ERRORS, name
        assert retry["BackoffRate"] >= 2 and retry["MaxAttempts"] >= 3, name


def test_every_failure_path_records_the_run_before_the_execution_fails() -> None:
    top = DEFINITION["States"]
    fails = [n for n, s in top.items() if s["Type"] == "Fail"]
    # Before the lock is taken nothing has started: those ends are recorded by the notify function (REFUSED).
    lock_ends = ["Run lock unavailable", "Run refused: another run is active"]
    assert sorted(fails) == ["Run failed", "Run failed without a record", *lock_ends]
    assert sorted(c["Next"] for c in top["Take run lock"]["Catch"]) == sorted(lock_ends)
    for name, state in top.items():
        if name == "Take run lock":
            continue
        for catcher in state.get("Catch", []):
            target = top[catcher["Next"]]
            chain = [catcher["Next"]]
            # a retry decision (the DecideRetry task, then its Choice) falls back to the Choice's Default
            while target["Type"] in ("Pass", "Choice") or _invokes(target, "DecideRetry"):
                following = target["Default"] if target["Type"] == "Choice" else target["Next"]
                chain.append(following)
                target = top[following]
            if name == "Record failed run":
                assert chain == ["Run failed without a record"]
            elif catcher["ErrorEquals"] == ["States.Timeout"]:  # an approval not given in time: a recorded end
                assert name == "Wait for approval"
                assert chain == ["Approval expired", "Was a rejected model imported?", "Record run"]
            else:
                assert chain[-1] == "Record failed run", (name, chain)
                assert any(top[c].get("ResultPath") == "$.failedStage" for c in chain[:-1]), (name, chain)


def test_the_failed_run_fails_with_the_recorded_error_and_cause() -> None:
    assert DEFINITION["States"]["Run failed"]["ErrorPath"] == "$.failure.error"
    assert DEFINITION["States"]["Run failed"]["CausePath"] == "$.failure.cause"


@pytest.mark.parametrize(
    ("stage", "parallel", "failed_stage"),
    [
        ("sft", "Train and baseline", "trainAndBaseline"),
        ("rft", "Evaluate SFT and train RFT", "evaluateSftAndTrainRft"),
    ],
)
def test_a_failed_training_branch_keeps_its_sibling_and_ends_the_run_after_the_parallel(
    stage: str, parallel: str, failed_stage: str
) -> None:
    top = DEFINITION["States"]
    label = stage.upper()
    # In the branch: the failure is noted in the stage record and the branch ends normally (no Fail state, which
    # would cancel the evaluation beside it and lose both branches' records)
    (branch,) = [b for b in top[parallel]["Branches"] if f"{label} failed" in b["States"]]
    assert not [n for n, s in branch["States"].items() if s["Type"] == "Fail"]
    describe = branch["States"][f"Describe the {label} failure"]
    assert describe["ResultPath"] == f"$.stages.{stage}" and describe["Parameters"]["status"] == "FAILED"
    # After the Parallel: a failed stage record ends the run, its failure (stage and job) kept as $.stageFailure
    question = top[top[parallel]["Next"]] if stage == "rft" else top[f"Did {label} fail?"]
    (choice,) = question["Choices"]
    assert choice == {
        "Variable": f"$.stages.{stage}.status",
        "StringEquals": "FAILED",
        "Next": f"Keep the {label} failure",
    }
    kept = top[choice["Next"]]
    assert (kept["InputPath"], kept["ResultPath"]) == (f"$.stages.{stage}.failure", "$.stageFailure")
    assert top[kept["Next"]]["Result"] == failed_stage


@pytest.mark.parametrize(("stage", "label"), [("baselineEval", "baseline evaluation"), ("sftEval", "SFT evaluation")])
def test_a_failed_evaluation_beside_training_is_noted_in_its_stage_and_its_branch_ends_normally(
    stage: str, label: str
) -> None:
    # a Fail state in the branch would fail the Parallel, and Step Functions would stop the training job beside it
    parallel = "Train and baseline" if stage == "baselineEval" else "Evaluate SFT and train RFT"
    (branch,) = [
        b for b in DEFINITION["States"][parallel]["Branches"] if f"Describe the {label} failure" in b["States"]
    ]
    assert not [n for n, s in branch["States"].items() if s["Type"] == "Fail"]
    describe = branch["States"][f"Describe the {label} failure"]
    assert describe["ResultPath"] == f"$.stages.{stage}"
    assert describe["Parameters"]["status"] == "FAILED"
    assert describe["Parameters"]["failure"] == {"stage": stage, "job.$": "$.job"}
    end = branch["States"][describe["Next"]]
    assert end["Type"] == "Pass" and end.get("End") is True
    # every failure path of the job (prepare, run, read) leads there
    for name in (f"Prepare {label} job", f"Read {label} results"):
        assert branch["States"][name]["Catch"][0]["Next"] == f"Describe the {label} failure"
    decide = branch["States"][branch["States"][f"Run {label} job"]["Catch"][0]["Next"]]
    assert decide["Catch"][0]["Next"] == f"Describe the {label} failure"
    assert branch["States"][decide["Next"]]["Default"] == f"Describe the {label} failure"
    # and the Parallel state takes the stage record from that branch
    index = DEFINITION["States"][parallel]["Branches"].index(branch)
    assert DEFINITION["States"][parallel]["ResultSelector"][f"{stage}.$"] == f"$[{index}].stages.{stage}"


@pytest.mark.parametrize("stage", naming.STAGES)
def test_every_job_stage_retries_through_the_decision_a_fresh_prepare_and_its_backoff(stage: str) -> None:
    name = title(stage)
    run_name = f"Run {name} training job" if naming.STAGE_METHODS[stage] != "eval" else f"Run {name} job"
    run = STATES[run_name]
    (catcher,) = run["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"] and catcher["ResultPath"] == "$.job.lastError"
    decide = STATES[catcher["Next"]]
    assert _invokes(decide, "DecideRetry")
    assert decide["Parameters"]["Payload"] == {"stage": stage, "plan.$": "$.plan", "job.$": "$.job"}
    assert decide["ResultPath"] == "$.job.decision"
    choice = STATES[decide["Next"]]
    assert choice["Choices"] == [
        {"Variable": "$.job.decision.retry", "BooleanEquals": True, "Next": choice["Choices"][0]["Next"]}
    ]
    backoff = STATES[choice["Choices"][0]["Next"]]
    assert backoff["Type"] == "Wait" and backoff["SecondsPath"] == "$.job.decision.delaySeconds"
    prepare = STATES[backoff["Next"]]
    assert _invokes(prepare, "PrepareJob") and prepare["Parameters"]["Payload"]["stage"] == stage
    service = STATES[prepare["Next"]]
    assert prepare["Next"] == f"Which service runs the {name} job?"
    assert service["Default"] == run_name
    # giving up, and a failing decision, both describe the stage's failure
    assert choice["Default"] == decide["Catch"][0]["Next"] == f"Describe the {name} failure"
    # on platform bedrock the attempt's failure goes to the same decision
    (on_bedrock,) = service["Choices"]
    assert on_bedrock == {"Variable": "$.plan.platform", "StringEquals": "bedrock", "Next": on_bedrock["Next"]}
    assert STATES[on_bedrock["Next"]]["Catch"] == run["Catch"]


@pytest.mark.parametrize("stage", naming.STAGES)
def test_on_bedrock_training_waits_for_a_customization_job_and_evaluation_loops_until_done(stage: str) -> None:
    name = title(stage)
    first = STATES[STATES[f"Which service runs the {name} job?"]["Choices"][0]["Next"]]
    if naming.STAGE_METHODS[stage] != "eval":
        assert first["Resource"] == "arn:aws:states:::bedrock:createModelCustomizationJob.sync"
        assert first["ResultPath"] is None and first["Next"] == f"Resolve {name} checkpoint"
        # Bedrock's request has no runtime limit: the Task's timeout is the stage's maximum runtime
        assert first["TimeoutSecondsPath"] == "$.job.request.maxRuntimeSeconds"
        return
    assert _invokes(first, "EvaluateOnBedrock")
    assert first["Parameters"]["Payload"] == {"stage": stage, "plan.$": "$.plan", "job.$": "$.job"}
    assert first["ResultPath"] == "$.job.evaluation"
    done = STATES[first["Next"]]
    assert done["Choices"] == [
        {"Variable": "$.job.evaluation.done", "BooleanEquals": True, "Next": f"Read {name} results"}
    ]
    wait = STATES[done["Default"]]
    assert wait == {"Type": "Wait", "SecondsPath": "$.job.evaluation.waitSeconds", "Next": first_name(stage)}


def first_name(stage: str) -> str:
    return str(STATES[f"Which service runs the {title(stage)} job?"]["Choices"][0]["Next"])


def test_the_job_loop_is_the_same_for_every_stage() -> None:
    # one loop, instantiated per stage: start -> prepare -> run (-> decide -> retry? -> back off -> prepare) -> finish
    def shape(state: dict) -> str:
        return f"{state['Type']} {state.get('Resource', '')} {state.get('Parameters', {}).get('FunctionName', '')}"

    shapes = set()
    for stage in naming.STAGES:
        start = STATES[f"Start {title(stage)}"]
        prepare_name = start["Next"]
        prepare = STATES[prepare_name]
        run = STATES[STATES[prepare["Next"]]["Default"]]
        decide = STATES[run["Catch"][0]["Next"]]
        choice = STATES[decide["Next"]]
        backoff = STATES[choice["Choices"][0]["Next"]]
        finish = STATES[run["Next"]]
        assert backoff["Next"] == prepare_name, stage
        shapes.add(tuple(shape(s) for s in (start, prepare, run, decide, choice, backoff)))
        assert shape(finish).endswith(
            "ResolveCheckpointFunctionArn}" if stage in ("sft", "rft") else "ReadEvaluationFunctionArn}"
        )
    assert len(shapes) == 1, shapes


def test_each_parallel_phase_runs_the_stages_of_its_phase_and_keeps_each_record_from_its_branch() -> None:
    parallels = [s for n, s in DEFINITION["States"].items() if s["Type"] == "Parallel" and n != FINAL_PHASE]
    phases = [phase for phase in naming.STAGE_PHASES if len(phase) > 1]
    assert len(parallels) == len(phases)
    for state, phase in zip(parallels, phases, strict=True):
        branch_stages = [
            next(s["Parameters"]["stage"] for n, s in b["States"].items() if n.startswith("Start "))
            for b in state["Branches"]
        ]
        assert tuple(branch_stages) == phase
        for stage in naming.STAGES:
            index = phase.index(stage) if stage in phase else 0
            assert state["ResultSelector"][f"{stage}.$"] == f"$[{index}].stages.{stage}"


def test_payloads_provide_every_field_the_handlers_require() -> None:
    for name, state in _lambda_tasks():
        handler = HANDLER_OF[state["Parameters"]["FunctionName"]]
        model = handlers.EVENT_MODELS[handler]
        given = {key.removesuffix(".$") for key in state["Parameters"]["Payload"]}
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        assert required <= given, (name, required - given)


def _outputs(s3: Any) -> dict[str, dict]:
    """One real output of every handler's domain function."""
    plan = samples.plan()
    stages = samples.stages_after_training()
    stages = stages.replace("finalEval", StageRecord(status="SUCCEEDED", metrics={"exact_match": 0.8}))
    table = metrics.collect_metrics(plan, stages)
    fake = FakeBedrock(statuses=["Active", "Active"])
    model = bedrock.start_import(
        bedrock=fake, plan=plan, stages=stages, role_arn=samples.IMPORT_ROLE_ARN, kms_key_arn=samples.KMS_KEY_ARN
    )
    deployment = bedrock.start_deployment(bedrock=fake, plan=plan, model=model)
    state = RunState.model_validate(
        {
            "execution": samples.EXECUTION,
            "plan": plan.to_json(),
            "stages": stages.to_json(),
            "error": {"Error": "E", "Cause": "c"},
            "failedStage": "import",
            "model": MODEL,
        }
    )
    kwargs = {
        "s3": s3,
        "bucket": samples.ARTIFACTS_BUCKET,
        "ended_at": "t",
        "region": "us-east-1",
        "pipeline_name": "nova",
    }
    from lambdas.pipeline.jobs import prepare_job

    return {
        "validate_run": dict.fromkeys(("input", "execution", "plan", "stages")),
        # the keys test_handlers asserts
        "preflight_checks": dict.fromkeys(("datasets", "grader", "cost", "quotas", "leakage")),
        # the progress lambdas.pipeline.bedrock_eval.evaluate returns (its module is a placeholder so far)
        "evaluate_on_bedrock": dict.fromkeys(EVALUATION_PROGRESS),
        "decide_retry": retry.decide(
            stage="sft",
            plan=plan,
            job=JobAttempt.model_validate({"attempt": 1, "lastError": {"Error": "SageMaker.ThrottlingException"}}),
        ).to_json(),
        "prepare_job": prepare_job(
            stage="sft",
            plan=plan,
            stages=stages,
            previous=JobAttempt(),
            region="us-east-1",
            s3=s3,
            sagemaker=FakeSageMaker(),
        ).to_json(),
        "resolve_checkpoint": dict.fromkeys(naming.STAGES),
        "read_evaluation": dict.fromkeys(naming.STAGES),
        "collect_metrics": table.to_json(),
        "apply_gate": gate.apply_gate(gate=plan.gate, metrics=table, champion=None).to_json(),
        "import_model": model.to_json(),
        "check_model_import": bedrock.check_import(bedrock=fake, model=model).to_json(),
        "delete_model": model.model_copy(update={"status": "Deleted", "deletedAt": "t"}).to_json(),
        "deploy_model": deployment.to_json(),
        "check_deployment": bedrock.check_deployment(bedrock=fake, deployment=deployment).to_json(),
        "record_run": record.record_run(state, **kwargs),
        "record_failed_run": record.record_failed_run(state, **kwargs),
    }


def test_result_selectors_only_select_what_the_handlers_return(s3: Any) -> None:
    outputs = _outputs(s3)
    for name, state in _lambda_tasks():
        handler = HANDLER_OF[state["Parameters"]["FunctionName"]]
        for key, path in state["ResultSelector"].items():
            assert path.startswith("$.Payload."), (name, key)
            field = path.removeprefix("$.Payload.")
            assert field in outputs[handler], (name, field, sorted(outputs[handler]))


def test_job_tasks_only_read_fields_that_prepare_returns(s3: Any) -> None:
    job = _outputs(s3)["prepare_job"]
    for name, state in STATES.items():
        if state.get("Resource", "").startswith("arn:aws:states:::sagemaker"):
            for path in _paths(state["Parameters"]):
                if path.startswith("$.job.request."):
                    assert path.removeprefix("$.job.request.") in job["request"], (name, path)
                elif path.startswith("$.job."):
                    assert path.removeprefix("$.job.") in job, (name, path)


def _paths(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k.endswith(".$") and isinstance(v, str)]
        for value in node.values():
            found.extend(_paths(value))
        return found
    if isinstance(node, list):
        return [p for item in node for p in _paths(item)]
    return []


def test_evaluations_and_the_import_are_off_the_critical_path() -> None:
    total = longest_path(DEFINITION, CASE_STUDY)
    # SFT + RFT + max(final eval, import) + deploy: 160 minutes, not 175
    assert total == 40 + 90 + max(20, 15) + 10


def test_a_slow_evaluation_or_import_would_show_on_the_critical_path() -> None:
    # the check can fail: an SFT evaluation longer than RFT lengthens the run
    assert longest_path(DEFINITION, {**CASE_STUDY, "Run SFT evaluation job": 120}) == 40 + 120 + 20 + 10
    # an import longer than the final evaluation sets the pace of that phase
    assert longest_path(DEFINITION, {**CASE_STUDY, "Wait for candidate import": 35}) == 40 + 90 + 35 + 10


def test_only_a_gate_that_prefers_the_sft_model_imports_after_the_gate() -> None:
    # The RFT model imported beside the final evaluation is deleted and SFT's imported: one import longer
    assert longest_path(DEFINITION, {**CASE_STUDY, "Wait for model import": 15}) == 40 + 90 + 20 + 15 + 10
    chosen = STATES["Is the imported model the gate's choice?"]
    same = {"Variable": "$.gate.candidate", "StringEqualsPath": "$.metrics.candidate", "Next": "Deploy model on demand"}
    assert same in chosen["Choices"] and chosen["Default"] == "Delete the model the gate did not choose"
    assert STATES["Delete the model the gate did not choose"]["Next"] == "Import model into Bedrock"
    assert STATES["Import model into Bedrock"]["Parameters"]["Payload"]["candidate.$"] == "$.gate.candidate"


def test_the_final_evaluation_and_the_import_of_the_checkpoint_it_judges_run_side_by_side() -> None:
    phase = STATES[FINAL_PHASE]
    evaluation, imported = phase["Branches"]
    assert "Run final evaluation job" in evaluation["States"]
    start = imported["States"]["Import the candidate beside the final evaluation"]
    # no gate decision yet: the import takes the checkpoint the final evaluation judges
    assert "candidate.$" not in start["Parameters"]["Payload"] and _invokes(start, "ImportModel")
    assert imported["States"][imported["StartAt"]]["Choices"][0]["Variable"] == f"{ENABLED}.deploy"
    # every branch outcome has the fields the ResultSelector reads, so none can fail the Parallel
    for name in ("Candidate import skipped", "Candidate imported", "Candidate import ended in failure"):
        outcome = imported["States"][name]
        fields = {k.removesuffix(".$") for k in {**outcome.get("Result", {}), **outcome.get("Parameters", {})}}
        assert fields == {"status", "model", "error"}, name
        assert outcome.get("End") is True
    # a failed final evaluation ends the run (it is not advisory) and deletes a model imported for nothing
    assert STATES["Did the final evaluation fail?"]["Choices"][0]["Next"] == "Keep the final evaluation failure"
    left = STATES["Is a model left after the failed evaluation?"]
    assert left["Choices"][0]["Next"] == "Delete the model of the failed evaluation"
    assert _invokes(STATES["Delete the model of the failed evaluation"], "DeleteModel")


def test_a_rejected_candidate_is_deleted_and_never_deployed() -> None:
    assert STATES["Did the model pass the gate?"]["Default"] == "Was a rejected model imported?"
    rejected = STATES["Was a rejected model imported?"]
    assert rejected["Choices"][0] == {"Variable": "$.model", "IsPresent": True, "Next": "Delete the rejected model"}
    delete = STATES["Delete the rejected model"]
    assert _invokes(delete, "DeleteModel") and delete["Next"] == "Record run"


def test_the_skip_decisions_read_the_plans_enabled_stage_flags() -> None:
    field = ENABLED.removeprefix("$.plan.")
    assert field in Plan.model_fields
    flags = Plan.model_fields[field].annotation
    assert isinstance(flags, type) and issubclass(flags, BaseModel)
    assert "deploy" in flags.model_fields


@pytest.mark.parametrize("stage", naming.STAGES)
def test_each_job_stage_but_the_final_evaluation_can_be_skipped_by_the_plan(stage: str) -> None:
    choices = [
        s
        for s in STATES.values()
        if s["Type"] == "Choice" and any(c.get("Variable") == f"{ENABLED}.{stage}" for c in s["Choices"])
    ]
    # the final evaluation always runs: it feeds the gate
    assert len(choices) == (0 if stage == "finalEval" else 1)


def _retry_budget_seconds(retrier: dict) -> float:
    """The longest a Retry keeps trying before giving up (without jitter)."""
    delays = [retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n for n in range(retrier["MaxAttempts"])]
    return sum(min(d, retrier.get("MaxDelaySeconds", d)) for d in delays)


def test_steps_after_finished_jobs_retry_lambda_throttling_for_half_an_hour() -> None:
    # A throttled read of a finished job's output, or of the run record, must not throw the paid work away.
    after_paid_work = [
        n
        for n in STATES
        if n.startswith(("Resolve ", "Read ")) or n in ("Collect metrics", "Record run", "Record failed run")
    ]
    assert len(after_paid_work) == 8, after_paid_work
    for name in after_paid_work:
        [retrier] = STATES[name]["Retry"]
        assert "Lambda.TooManyRequestsException" in retrier["ErrorEquals"], name
        assert _retry_budget_seconds(retrier) >= 30 * 60, name
    # the other Lambda steps keep the short budget: a failure early on is reported quickly
    assert _retry_budget_seconds(STATES["Validate run"]["Retry"][0]) < 5 * 60
