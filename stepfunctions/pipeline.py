"""The customization workflow, described once: its functions, its job loop and its phases.

``python -m stepfunctions`` (``make asl``) writes :func:`definition` to
``stepfunctions/pipeline.asl.json``, the file the stack deploys
(``DefinitionBody.from_file``) and the rehearsal runs; a test fails when the committed
file differs from what this module generates.

- :data:`FUNCTIONS` is the catalogue of the pipeline's Lambda functions: the stack
  creates one function for each, and the state machine may invoke exactly the ones
  the definition references (:func:`task_integrations`).
- :func:`job_loop` is the loop every SageMaker job stage runs (start, prepare the
  attempt, run the job, decide whether a failed attempt is retried, back off, read the
  job's output, describe a failure), written once and instantiated per stage.
- The phases, which stages run side by side in a Parallel state, come from
  :data:`lambdas.pipeline.naming.STAGE_PHASES`, the same source the stage code uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGE_PHASES, STAGES
from stepfunctions.asl import (
    Flow,
    State,
    boolean_choice,
    catch_all,
    iter_states,
    lambda_task,
    pass_state,
)

DEFINITION_FILE = Path(__file__).resolve().parent / "pipeline.asl.json"
SAGEMAKER_TRAINING_JOB_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
HANDLERS_MODULE = "lambdas.pipeline.handlers"
# Where the plan keeps which stages run (the run input's ``stages`` flags).
ENABLED = "$.plan.stages"


@dataclass(frozen=True)
class Function:
    """A pipeline function: construct id (and so its ARN placeholder), handler, purpose, timeout."""

    construct_id: str
    handler: str
    description: str
    timeout_seconds: int = 120


FUNCTIONS: tuple[Function, ...] = (
    Function("ValidateRun", "validate_run", "Nova pipeline: validate the run input and resolve the run plan"),
    # Dataset validation streams up to a few GB from S3 in bounded memory.
    Function("Preflight", "preflight_checks", "Nova pipeline: dataset checks, grader smoke test, budget", 900),
    Function("PrepareJob", "prepare_job", "Nova pipeline: render a recipe and prepare a training job"),
    Function("DecideRetry", "decide_retry", "Nova pipeline: decide whether a failed job attempt is retried"),
    # Output archives are streamed; an evaluation's archive also holds its per-sample outputs.
    Function("ResolveCheckpoint", "resolve_checkpoint", "Nova pipeline: read a job's checkpoint manifest", 600),
    Function("ReadEvaluation", "read_evaluation", "Nova pipeline: read an evaluation job's results", 600),
    Function("CollectMetrics", "collect_metrics", "Nova pipeline: metrics table of baseline, SFT and RFT"),
    Function("ApplyGate", "apply_gate", "Nova pipeline: quality gate"),
    Function("ImportModel", "import_model", "Nova pipeline: Bedrock CreateCustomModel"),
    Function("CheckModelImport", "check_model_import", "Nova pipeline: Bedrock GetCustomModel"),
    Function("DeployModel", "deploy_model", "Nova pipeline: Bedrock CreateCustomModelDeployment"),
    Function("CheckDeployment", "check_deployment", "Nova pipeline: Bedrock GetCustomModelDeployment"),
    Function("RecordRun", "record_run", "Nova pipeline: run record, report and champion"),
    Function("RecordFailedRun", "record_failed_run", "Nova pipeline: run record of a failed run"),
)

# -- the job loop ------------------------------------------------------------------------------------

# What each job stage's training job does (the Run state's comment).
_JOB_PURPOSE = {
    "baselineEval": "Evaluates the base model",
    "sft": "Supervised fine-tuning (LoRA) on the Converse dataset",
    "sftEval": "Evaluates the SFT checkpoint",
    "rft": "Reinforcement fine-tuning with the grader Lambda as reward function",
    "finalEval": "Evaluates the candidate (RFT checkpoint, or SFT when RFT is skipped)",
}
# The question of the Choice that skips a stage the plan leaves out. The final evaluation has none:
# it always runs, it feeds the gate.
_RUN_QUESTION = {
    "baselineEval": "Should the baseline be evaluated?",
    "sft": "Should SFT run?",
    "sftEval": "Should the SFT model be evaluated?",
    "rft": "Should RFT run?",
}
_STAGE_RECORD_FIELDS = tuple(STAGES)
_ADVISORY_COMMENT = (
    "An evaluation beside training is advisory: its failure never cancels training. The quality gate fails "
    "closed when it needs the missing metrics (a baseline with minGainOverBaseline > 0)"
)


def title(stage: str) -> str:
    """How state names call a stage: ``SFT``, ``RFT``, ``baseline evaluation``..."""
    return STAGE_LABELS[stage].removesuffix(" training")


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class JobStage:
    """One SageMaker job stage and where its loop goes when it ends."""

    key: str
    # None inside a Parallel branch (the branch ends); else the state after the stage.
    next_state: str | None = None
    # Outside a Parallel branch: where a failure is noted before the run is recorded as failed.
    failure_note: str | None = None

    @property
    def training(self) -> bool:
        return STAGE_METHODS[self.key] != "eval"

    @property
    def advisory(self) -> bool:
        """An evaluation beside training: its failure is recorded, not fatal."""
        return not self.training and self.next_state is None

    @property
    def job_name(self) -> str:
        return f"{title(self.key)} job"

    @property
    def run_state(self) -> str:
        kind = "training job" if self.training else "job"
        return f"Run {title(self.key)} {kind}"

    @property
    def finish_state(self) -> str:
        return f"Resolve {title(self.key)} checkpoint" if self.training else f"Read {title(self.key)} results"

    @property
    def describe_state(self) -> str:
        return f"Describe the {title(self.key)} failure"


def _sagemaker_job(stage: JobStage) -> State:
    """The CreateTrainingJob request: static parts here, the attempt's parts from ``$.job.request``."""

    def channel(name: str, data_type: str, uri_path: str) -> State:
        source = {"S3DataType": data_type, "S3Uri.$": uri_path, "S3DataDistributionType": "FullyReplicated"}
        return {"ChannelName": name, "InputMode": "File", "DataSource": {"S3DataSource": source}}

    # SFT data is a Converse dataset; RFT and evaluation data are plain JSONL files.
    data_type = "Converse" if stage.key == "sft" else "S3Prefix"
    return {
        "TrainingJobName.$": "$.job.name",
        "RoleArn": "${SageMakerRoleArn}",
        "AlgorithmSpecification": {"TrainingImage.$": "$.job.request.image", "TrainingInputMode": "File"},
        "InputDataConfig": [
            channel("recipe", "S3Prefix", "$.job.request.recipeUri"),
            channel("train", data_type, "$.job.request.dataUri"),
        ],
        "OutputDataConfig": {"S3OutputPath.$": "$.job.request.outputPath", "KmsKeyId": "${KmsKeyArn}"},
        "ResourceConfig": {
            "InstanceType.$": "$.job.request.instanceType",
            "InstanceCount.$": "$.job.request.instanceCount",
            "VolumeSizeInGB.$": "$.job.request.volumeSizeInGb",
        },
        "StoppingCondition": {"MaxRuntimeInSeconds.$": "$.job.request.maxRuntimeInSeconds"},
        "HyperParameters.$": "$.job.request.hyperParameters",
        "ProfilerConfig": {"DisableProfiler": True},
        "Tags": [
            {"Key": "nova:pipeline", "Value": "${PipelineName}"},
            {"Key": "nova:run-id", "Value.$": "$.plan.runId"},
            {"Key": "nova:stage", "Value": stage.key},
        ],
    }


def job_loop(stage: JobStage) -> Flow:
    """The states of one job stage, from the skip decision to the recorded outcome."""
    flow = Flow()
    name = title(stage.key)
    start = f"Start {name}"
    prepare = f"Prepare {stage.job_name}"
    decide = f"Decide whether to retry the {stage.job_name}"
    can_retry = f"Can the {stage.job_name} be retried?"
    back_off = f"Back off before retrying the {stage.job_name}"
    failure = f"{_capitalized(name)} failed"
    describe = stage.describe_state
    job_error = "$.job.lastError"

    if stage.key in _RUN_QUESTION:
        skipped = f"{_capitalized(name)} skipped"
        flow.add(_RUN_QUESTION[stage.key], boolean_choice(f"{ENABLED}.{stage.key}", when_true=start, otherwise=skipped))
        flow.add(skipped, pass_state())
    flow.add(
        start,
        pass_state(
            parameters={"stage": stage.key, "attempt": 0, "startedAt.$": "$$.State.EnteredTime", "errors": []},
            result_path="$.job",
            next_state=prepare,
            comment="Attempt 0: the first prepare makes attempt 1; startedAt is the stage start",
        ),
    )
    flow.add(
        prepare,
        lambda_task(
            "PrepareJob",
            {"stage": stage.key, "plan.$": "$.plan", "stages.$": "$.stages", "previous.$": "$.job"},
            select=("stage", "name", "attempt", "startedAt", "errors", "request"),
            result_path="$.job",
            next_state=stage.run_state,
            on_error=describe,
            error_path=job_error,
            comment=f"Renders the {name} recipe to runs/<run-id>/recipes/{stage.key}/recipe.yaml and builds a "
            "CreateTrainingJob request with a fresh job name for this attempt",
        ),
    )
    flow.add(
        stage.run_state,
        {
            "Type": "Task",
            "Comment": f"{_JOB_PURPOSE[stage.key]} as a SageMaker training job; Step Functions waits for it (.sync)",
            "Resource": SAGEMAKER_TRAINING_JOB_SYNC,
            "Parameters": _sagemaker_job(stage),
            "ResultSelector": {
                "name.$": "$.TrainingJobName",
                "status.$": "$.TrainingJobStatus",
                "arn.$": "$.TrainingJobArn",
            },
            "ResultPath": "$.job.result",
            "Catch": catch_all(decide, job_error),
            "Next": stage.finish_state,
        },
    )
    flow.add(
        decide,
        lambda_task(
            "DecideRetry",
            {"stage": stage.key, "plan.$": "$.plan", "job.$": "$.job"},
            select=("retry", "delaySeconds", "reason"),
            result_path="$.job.decision",
            next_state=can_retry,
            on_error=describe,
            error_path="$.job.decisionError",
            comment="Capacity, quota, throttling and transient service errors get a new attempt with a new job "
            "name after a backoff, up to the stage's attempt limit",
        ),
    )
    flow.add(can_retry, boolean_choice("$.job.decision.retry", when_true=back_off, otherwise=describe))
    flow.add(back_off, {"Type": "Wait", "SecondsPath": "$.job.decision.delaySeconds", "Next": prepare})
    flow.add(
        stage.finish_state,
        lambda_task(
            "ResolveCheckpoint" if stage.training else "ReadEvaluation",
            {"stage": stage.key, "job.$": "$.job", "stages.$": "$.stages", "endedAt.$": "$$.State.EnteredTime"},
            select=_STAGE_RECORD_FIELDS,
            result_path="$.stages",
            next_state=stage.next_state,
            on_error=describe,
            error_path=job_error,
        ),
    )
    if stage.advisory:
        flow.add(
            describe,
            pass_state(
                parameters={
                    "status": "FAILED",
                    "failure": {"stage": stage.key, "job.$": "$.job"},
                    "endedAt.$": "$$.State.EnteredTime",
                },
                result_path=f"$.stages.{stage.key}",
                next_state=failure,
                comment=f"Notes the failure in stages.{stage.key} (recorded in run.json with its error); the "
                "branch then ends normally, so the training job beside it keeps running",
            ),
        )
        flow.add(failure, pass_state(comment=_ADVISORY_COMMENT))
        return flow
    failure_target = stage.failure_note or failure
    flow.add(
        describe,
        pass_state(
            parameters={"stage": stage.key, "job.$": "$.job"},
            result_path="$.stageFailure",
            next_state=failure_target,
        ),
    )
    if stage.failure_note is None:
        flow.add(
            failure,
            {
                "Type": "Fail",
                "Comment": "Stops the sibling branch; the run is recorded as failed by the Catch of the Parallel state",
                "Error": f"{stage.key[:1].upper()}{stage.key[1:]}Failed",
                "CausePath": "States.JsonToString($.stageFailure)",
            },
        )
    return flow


# -- the run -------------------------------------------------------------------------------------------

# Parallel phases: the state's name, why its stages run side by side, and the failure note's wording.
_PHASE_NAMES = {
    ("baselineEval", "sft"): (
        "Train and baseline",
        "The baseline evaluation runs beside SFT, off the critical path; its failure is recorded, not fatal",
        "training and baseline",
    ),
    ("sftEval", "rft"): (
        "Evaluate SFT and train RFT",
        "The SFT evaluation runs beside RFT, off the critical path",
        "SFT evaluation and RFT",
    ),
}
# Run-level failure notes: the state name's wording and the ``failedStage`` the record shows.
_FAILURE_NOTES = {
    "validateRun": "validation",
    "preflight": "preflight checks",
    "trainAndBaseline": "training and baseline",
    "evaluateSftAndTrainRft": "SFT evaluation and RFT",
    "finalEval": "final evaluation",
    "collectMetrics": "metrics collection",
    "qualityGate": "quality gate",
    "import": "model import",
    "deploy": "deployment",
    "recordRun": "run record",
}
_FAILED_STAGE_OF_PHASE = {("baselineEval", "sft"): "trainAndBaseline", ("sftEval", "rft"): "evaluateSftAndTrainRft"}


def note(failed_stage: str) -> str:
    """The state that notes a run-level failure before the run is recorded as failed."""
    return f"Note failure in {_FAILURE_NOTES[failed_stage]}"


def _run_task(
    function: str,
    payload: Mapping[str, Any],
    *,
    select: tuple[str, ...],
    result_path: str,
    next_state: str,
    failed_stage: str,
    comment: str | None = None,
) -> State:
    """A run-level Lambda task: a failure is noted under ``failed_stage`` and recorded."""
    return lambda_task(
        function,
        payload,
        select=select,
        result_path=result_path,
        next_state=next_state,
        on_error=note(failed_stage),
        error_path="$.error",
        comment=comment,
    )


def _phase(stages: tuple[str, ...], next_state: str, flow: Flow) -> str:
    """Add one phase; returns the name of its first state."""
    if len(stages) == 1:
        (stage,) = stages
        loop = job_loop(JobStage(stage, next_state=next_state, failure_note=note(stage)))
        flow.extend(loop)
        return next(iter(loop.states))
    name, comment, _ = _PHASE_NAMES[stages]
    branches = [job_loop(JobStage(stage)).as_branch() for stage in stages]
    # Each stage record comes from the branch that ran the stage; the others are unchanged in every branch.
    selector = {f"{s}.$": f"$[{stages.index(s) if s in stages else 0}].stages.{s}" for s in STAGES}
    flow.add(
        name,
        {
            "Type": "Parallel",
            "Comment": comment,
            "Branches": branches,
            "ResultSelector": selector,
            "ResultPath": "$.stages",
            "Catch": catch_all(note(_FAILED_STAGE_OF_PHASE[stages]), "$.error"),
            "Next": next_state,
        },
    )
    return name


def _bedrock_wait(
    flow: Flow,
    *,
    what: str,
    check: str,
    function: str,
    result: str,
    select: tuple[str, ...],
    question: str,
    active_next: str,
    failed_stage: str,
    failed: tuple[str, str, str],
    timed_out: tuple[str, str, str],
) -> None:
    """Wait with backoff, check the status, and branch on Active, Failed or too many checks."""
    wait = f"Wait for {what}"
    flow.add(
        wait,
        {
            "Type": "Wait",
            "Comment": "Backs off between checks: 60 s, doubling, at most 600 s",
            "SecondsPath": f"$.{result}.poll.waitSeconds",
            "Next": check,
        },
    )
    flow.add(
        check,
        _run_task(
            function,
            {f"{result}.$": f"$.{result}"},
            select=select,
            result_path=f"$.{result}",
            next_state=question,
            failed_stage=failed_stage,
        ),
    )
    flow.add(
        question,
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": f"$.{result}.status", "StringEquals": "Active", "Next": active_next},
                {"Variable": f"$.{result}.status", "StringEquals": "Failed", "Next": failed[0]},
                {"Variable": f"$.{result}.poll.exhausted", "BooleanEquals": True, "Next": timed_out[0]},
            ],
            "Default": wait,
        },
    )
    for state_name, error, cause in (failed, timed_out):
        flow.add(
            state_name,
            pass_state(
                parameters={"Error": error, "Cause.$": cause}, result_path="$.error", next_state=note(failed_stage)
            ),
        )


def definition() -> dict[str, Any]:
    """The whole state machine definition (JSONPath)."""
    flow = Flow()
    flow.add(
        "Start run",
        pass_state(
            parameters={
                "input.$": "$",
                "execution": {
                    "id.$": "$$.Execution.Id",
                    "name.$": "$$.Execution.Name",
                    "startTime.$": "$$.Execution.StartTime",
                },
            },
            next_state="Validate run",
            comment="Keeps the console input under $.input and the execution facts the run id is derived from",
        ),
    )
    flow.add(
        "Validate run",
        _run_task(
            "ValidateRun",
            {"input.$": "$.input", "execution.$": "$.execution"},
            select=("input", "execution", "plan", "stages"),
            result_path="$",
            next_state="Preflight checks",
            failed_stage="validateRun",
            comment="Parses the run input, lists every problem in one error, resolves the run plan and run id",
        ),
    )
    # Phases are built last to first, so each knows the state that follows it.
    phases, first_phase = Flow(), "Collect metrics"
    for stages in reversed(STAGE_PHASES):
        earlier = Flow()
        first_phase = _phase(stages, first_phase, earlier)
        earlier.extend(phases)
        phases = earlier
    flow.add(
        "Preflight checks",
        _run_task(
            "Preflight",
            {"plan.$": "$.plan"},
            select=("datasets", "grader", "cost", "quotas"),
            result_path="$.preflight",
            next_state=first_phase,
            failed_stage="preflight",
            comment="Before any GPU spend: cost estimate against the budget, GPU instance quotas, dataset formats "
            "and sizes, grader smoke test",
        ),
    )
    flow.extend(phases)
    flow.add(
        "Collect metrics",
        _run_task(
            "CollectMetrics",
            {"plan.$": "$.plan", "stages.$": "$.stages"},
            select=("metric", "candidate", "table", "failed"),
            result_path="$.metrics",
            next_state="Apply quality gate",
            failed_stage="collectMetrics",
            comment="One metrics table: baseline / SFT / RFT",
        ),
    )
    flow.add(
        "Apply quality gate",
        _run_task(
            "ApplyGate",
            {"plan.$": "$.plan", "metrics.$": "$.metrics"},
            select=("passed", "reasons", "checks", "champion"),
            result_path="$.gate",
            next_state="Did the model pass the gate?",
            failed_stage="qualityGate",
            comment="minScore, gain over the baseline and, when configured, the model this pipeline deployed last",
        ),
    )
    flow.add(
        "Did the model pass the gate?",
        boolean_choice("$.gate.passed", when_true="Should the model be deployed?", otherwise="Record run"),
    )
    flow.add(
        "Should the model be deployed?",
        boolean_choice(f"{ENABLED}.deploy", when_true="Import model into Bedrock", otherwise="Record run"),
    )
    model_fields = ("arn", "name", "checkpoint", "status", "failureMessage", "poll")
    flow.add(
        "Import model into Bedrock",
        _run_task(
            "ImportModel",
            {"plan.$": "$.plan", "stages.$": "$.stages"},
            select=model_fields,
            result_path="$.model",
            next_state="Wait for model import",
            failed_stage="import",
            comment="CreateCustomModel from the final checkpoint (idempotent: clientRequestToken derived from the "
            "run id)",
        ),
    )
    _bedrock_wait(
        flow,
        what="model import",
        check="Check model import",
        function="CheckModelImport",
        result="model",
        select=model_fields,
        question="Is the model imported?",
        active_next="Deploy model on demand",
        failed_stage="import",
        failed=(
            "Model import failed",
            "ModelImportFailed",
            "States.Format('Bedrock could not import {} from {}: {}', $.model.arn, $.model.checkpoint, "
            "$.model.failureMessage)",
        ),
        timed_out=(
            "Model import timed out",
            "ModelImportTimedOut",
            "States.Format('Model {} was still {} after {} status checks', $.model.arn, $.model.status, "
            "$.model.poll.count)",
        ),
    )
    deployment_fields = ("arn", "name", "modelArn", "status", "failureMessage", "poll")
    flow.add(
        "Deploy model on demand",
        _run_task(
            "DeployModel",
            {"plan.$": "$.plan", "model.$": "$.model"},
            select=deployment_fields,
            result_path="$.deployment",
            next_state="Wait for deployment",
            failed_stage="deploy",
            comment="CreateCustomModelDeployment (on-demand) of the imported model; the model stays if this fails",
        ),
    )
    _bedrock_wait(
        flow,
        what="deployment",
        check="Check deployment",
        function="CheckDeployment",
        result="deployment",
        select=deployment_fields,
        question="Is the deployment active?",
        active_next="Record run",
        failed_stage="deploy",
        failed=(
            "Deployment failed",
            "DeploymentFailed",
            "States.Format('Bedrock could not deploy {} on demand: {}', $.deployment.modelArn, "
            "$.deployment.failureMessage)",
        ),
        timed_out=(
            "Deployment timed out",
            "DeploymentTimedOut",
            "States.Format('Deployment {} was still {} after {} status checks', $.deployment.arn, "
            "$.deployment.status, $.deployment.poll.count)",
        ),
    )
    record_payload = {"run.$": "$", "endedAt.$": "$$.State.EnteredTime"}
    flow.add(
        "Record run",
        _run_task(
            "RecordRun",
            record_payload,
            select=("status", "runRecord", "report"),
            result_path="$.record",
            next_state="Run succeeded",
            failed_stage="recordRun",
            comment="runs/<run-id>/run.json and report.html (SUCCEEDED or GATE_REJECTED); the champion record "
            "after a deploy",
        ),
    )
    flow.add("Run succeeded", {"Type": "Succeed"})
    for failed_stage in _FAILURE_NOTES:
        flow.add(
            note(failed_stage),
            pass_state(result=failed_stage, result_path="$.failedStage", next_state="Record failed run"),
        )
    flow.add(
        "Record failed run",
        lambda_task(
            "RecordFailedRun",
            record_payload,
            select=("error", "cause", "runRecord"),
            result_path="$.failure",
            next_state="Run failed",
            on_error="Run failed without a record",
            error_path="$.recordError",
            comment="runs/<run-id>/run.json with status FAILED, the failed stage and its cause, and every partial "
            "result",
        ),
    )
    flow.add(
        "Run failed",
        {
            "Type": "Fail",
            "Comment": "Error and cause name the failed stage",
            "ErrorPath": "$.failure.error",
            "CausePath": "$.failure.cause",
        },
    )
    flow.add(
        "Run failed without a record",
        {"Type": "Fail", "Error": "RunRecordFailed", "CausePath": "States.JsonToString($.recordError)"},
    )
    phases_text = ", ".join(" || ".join(_short(s) for s in stages) for stages in STAGE_PHASES)
    return {
        "Comment": f"Amazon Nova customization: validate, preflight, {phases_text}, quality gate, Bedrock import "
        "and on-demand deployment, run record.",
        "QueryLanguage": "JSONPath",
        "StartAt": "Start run",
        "States": flow.states,
    }


def _short(stage: str) -> str:
    return {"baselineEval": "baseline eval", "sftEval": "SFT eval", "finalEval": "final eval"}.get(stage, title(stage))


def render() -> str:
    """The definition file's text: two-space indented JSON, one trailing newline."""
    return json.dumps(definition(), indent=2) + "\n"


def task_integrations(document: Mapping[str, Any]) -> dict[str, set[str]]:
    """What a definition's tasks call: ``{resource: {function construct ids}}`` (empty for service tasks)."""
    found: dict[str, set[str]] = {}
    for _, state in iter_states(document):
        if state["Type"] != "Task":
            continue
        functions = found.setdefault(state["Resource"], set())
        placeholder = str(state.get("Parameters", {}).get("FunctionName", ""))
        if placeholder.startswith("${") and placeholder.endswith("FunctionArn}"):
            functions.add(placeholder[2 : -len("FunctionArn}")])
    return found
