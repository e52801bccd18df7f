"""The customization workflow, described once: its functions, its job loop and its phases.

``python -m stepfunctions`` (``make asl``) writes :func:`definition` to
``stepfunctions/pipeline.asl.json``, the file the stack deploys
(``DefinitionBody.from_file``) and the rehearsal runs; a test fails when the committed
file differs from what this module generates.

- :data:`FUNCTIONS` is the catalogue of the pipeline's Lambda functions: the stack
  creates one function for each, and the state machine may invoke exactly the ones
  the definition references (:func:`task_integrations`).
- :func:`job_loop` is the loop every job stage runs (start, prepare the attempt, run the
  job, decide whether a failed attempt is retried, back off, read the job's output,
  describe a failure), written once and instantiated per stage. The run's platform picks
  the job: a SageMaker training job, or on ``bedrock`` a Bedrock customization job
  (training) or the EvaluateOnBedrock loop (evaluation).
- The phases, which stages run side by side in a Parallel state, come from
  :data:`lambdas.pipeline.naming.STAGE_PHASES`, the same source the stage code uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lambdas.common import run_lock
from lambdas.pipeline import bedrock_eval, bedrock_hyperparameters
from lambdas.pipeline.bedrock_jobs import CUSTOMIZATION_TYPES
from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGE_PHASES, STAGES, capitalized
from stepfunctions.asl import (
    LAMBDA_RETRY_AFTER_PAID_WORK,
    Flow,
    State,
    boolean_choice,
    catch_all,
    function_placeholder,
    iter_states,
    lambda_task,
    pass_state,
)

DEFINITION_FILE = Path(__file__).resolve().parent / "pipeline.asl.json"
SAGEMAKER_TRAINING_JOB_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
BEDROCK_CUSTOMIZATION_JOB_SYNC = "arn:aws:states:::bedrock:createModelCustomizationJob.sync"
DYNAMODB_PUT_ITEM = "arn:aws:states:::dynamodb:putItem"
LAMBDA_INVOKE_WAIT_FOR_TASK_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"
# The longest an execution may run (the state machine's TimeoutSeconds): it then ends TIMED_OUT, is recorded and
# notified, and releases the run lock. The trigger queue's maximum wait is derived from it: a request must be able
# to wait out one whole run within SQS's 14-day retention, which caps this at about 6.5 days (stacks/triggers.py).
MAX_RUN_SECONDS = 6 * 24 * 3600
# Errors of DynamoDB itself (capacity, throttling, a server error): the lock is retried, not given up.
_DYNAMODB_TRANSIENT_ERRORS = (
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.ThrottlingException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.AmazonDynamoDBException",
)
HANDLERS_MODULE = "lambdas.pipeline.handlers"
# Where the plan keeps which stages run (the run input's ``stages`` flags).
ENABLED = "$.plan.enabled"


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
    # Platform bedrock: one step of an evaluation through Bedrock inference (resumable, called until done).
    Function("EvaluateOnBedrock", "evaluate_on_bedrock", "Nova pipeline: evaluate a model through Bedrock", 900),
    Function("CollectMetrics", "collect_metrics", "Nova pipeline: metrics table of baseline, SFT and RFT"),
    Function("ApplyGate", "apply_gate", "Nova pipeline: quality gate"),
    Function("ImportModel", "import_model", "Nova pipeline: Bedrock CreateCustomModel"),
    Function("CheckModelImport", "check_model_import", "Nova pipeline: Bedrock GetCustomModel"),
    Function("DeleteModel", "delete_model", "Nova pipeline: Bedrock DeleteCustomModel of a model not deployed"),
    Function("DeployModel", "deploy_model", "Nova pipeline: Bedrock CreateCustomModelDeployment"),
    Function("CheckDeployment", "check_deployment", "Nova pipeline: Bedrock GetCustomModelDeployment"),
    Function("RequestApproval", "request_approval", "Nova pipeline: keep the approval token, say how to decide"),
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


_TRAINING_FAILURE_COMMENT = (
    "A failed training stage (or final evaluation) ends the run after the Parallel state, once the work beside it "
    "has finished and been recorded"
)
FINAL_STAGE = "finalEval"


def title(stage: str) -> str:
    """How state names call a stage: ``SFT``, ``RFT``, ``baseline evaluation``..."""
    return STAGE_LABELS[stage].removesuffix(" training")


@dataclass(frozen=True)
class JobStage:
    """One job stage and where its loop goes when it ends."""

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
        """An evaluation beside training: its failure is recorded, not fatal (the final evaluation's is)."""
        return not self.training and self.next_state is None and self.key != FINAL_STAGE


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
        "Tags": _tags(stage),
    }


def _tags(stage: JobStage) -> list[State]:
    """The tags of a stage's job: the pipeline, the run and the stage."""
    return [
        {"Key": "nova:pipeline", "Value": "${PipelineName}"},
        {"Key": "nova:run-id", "Value.$": "$.plan.runId"},
        {"Key": "nova:stage", "Value": stage.key},
    ]


def _bedrock_job(stage: JobStage) -> State:
    """The CreateModelCustomizationJob request in Step Functions' spelling (each member capitalized, as the CDK's
    BedrockCreateModelCustomizationJob renders them): static parts here, the attempt's from ``$.job.request``."""
    method = STAGE_METHODS[stage.key]
    request: State = {
        "JobName.$": "$.job.name",
        "CustomModelName.$": "$.job.request.customModelName",
        "RoleArn": "${BedrockCustomizationRoleArn}",
        "BaseModelIdentifier.$": "$.job.request.baseModelIdentifier",
        "CustomizationType": CUSTOMIZATION_TYPES[method],
        "CustomModelKmsKeyId": "${KmsKeyArn}",
        "TrainingDataConfig": {"S3Uri.$": "$.job.request.trainingDataUri"},
        "OutputDataConfig": {"S3Uri.$": "$.job.request.outputUri"},
        # A fresh job name per attempt: the same attempt's request is never created twice.
        "ClientRequestToken.$": "$.job.name",
        "JobTags": _tags(stage),
        "CustomModelTags": _tags(stage),
    }
    if method == "sft":
        # Bedrock's map of strings; its keys are Bedrock's names as they are (a map, not members).
        request["HyperParameters.$"] = "$.job.request.hyperParameters"
        return request
    # RFT's typed hyperparameters are members: each capitalized, each value from the resolved request (every
    # one is present: lambdas.pipeline.bedrock_hyperparameters gives each a default).
    typed = {
        f"{p.name[:1].upper()}{p.name[1:]}.$": f"$.job.request.rftHyperParameters.{p.name}"
        for p in bedrock_hyperparameters.table(method).values()
    }
    grader = {"LambdaGrader": {"LambdaArn.$": "$.job.request.graderArn"}}
    request["CustomizationConfig"] = {"RftConfig": {"GraderConfig": grader, "HyperParameters": typed}}
    return request


def _on_bedrock(flow: Flow, stage: JobStage, name: str, *, decide: str, finish: str) -> str:
    """Platform bedrock's states of a stage's attempt; returns the first. Training: a customization job that
    Step Functions waits for (.sync). Evaluation: EvaluateOnBedrock, called again after its wait until done."""
    job_error = "$.job.lastError"
    if stage.training:
        run = f"Run {name} customization job on Bedrock"
        flow.add(
            run,
            {
                "Type": "Task",
                "Comment": f"{_JOB_PURPOSE[stage.key]} as a Bedrock model customization job; Step Functions waits "
                "for it (.sync). Its output model is read by the step after it (GetModelCustomizationJob)",
                "Resource": BEDROCK_CUSTOMIZATION_JOB_SYNC,
                "Parameters": _bedrock_job(stage),
                # Bedrock's request has no runtime limit: Step Functions times the Task out at the stage's
                # maxRuntimeSeconds and stops the job (the .sync pattern's StopModelCustomizationJob), so an
                # hourly-billed job never runs past what preflight priced. States.Timeout is not retried.
                "TimeoutSecondsPath": "$.job.request.maxRuntimeSeconds",
                "ResultPath": None,
                "Catch": catch_all(decide, job_error),
                "Next": finish,
            },
        )
        return run
    evaluate, done, wait = (
        f"Evaluate {name} on Bedrock",
        f"Is the {name} evaluation done?",
        f"Wait for the {name} evaluation",
    )
    flow.add(
        evaluate,
        lambda_task(
            "EvaluateOnBedrock",
            {"stage": stage.key, "plan.$": "$.plan", "job.$": "$.job"},
            select=EVALUATION_PROGRESS,
            result_path="$.job.evaluation",
            next_state=done,
            on_error=decide,
            error_path=job_error,
            comment=f"{_JOB_PURPOSE[stage.key]} through Bedrock inference: one resumable step (deploy the model, "
            "invoke it on the evaluation rows, score); called again until done",
        ),
    )
    flow.add(done, boolean_choice("$.job.evaluation.done", finish, wait))
    flow.add(wait, {"Type": "Wait", "SecondsPath": "$.job.evaluation.waitSeconds", "Next": evaluate})
    return evaluate


# What EvaluateOnBedrock returns, kept at ``$.job.evaluation`` between its calls.
EVALUATION_PROGRESS = bedrock_eval.PROGRESS_FIELDS


def job_loop(stage: JobStage) -> Flow:
    """The states of one job stage, from the skip decision to the recorded outcome."""
    flow, name, job_error = Flow(), title(stage.key), "$.job.lastError"
    start, prepare, run = f"Start {name}", f"Prepare {name} job", f"Run {name} {'training ' * stage.training}job"
    decide, can_retry = f"Decide whether to retry the {name} job", f"Can the {name} job be retried?"
    back_off, describe = f"Back off before retrying the {name} job", f"Describe the {name} failure"
    finish = f"Resolve {name} checkpoint" if stage.training else f"Read {name} results"
    failure = f"{capitalized(name)} failed"
    service = f"Which service runs the {name} job?"

    if stage.key in _RUN_QUESTION:
        skipped = f"{capitalized(name)} skipped"
        flow.add(_RUN_QUESTION[stage.key], boolean_choice(f"{ENABLED}.{stage.key}", start, skipped))
        flow.add(skipped, pass_state())
    first = {"stage": stage.key, "attempt": 0, "startedAt.$": "$$.State.EnteredTime", "errors": []}
    comment = "Attempt 0: the first prepare makes attempt 1; startedAt is the stage start"
    flow.add(start, pass_state(parameters=first, result_path="$.job", next_state=prepare, comment=comment))
    flow.add(
        prepare,
        lambda_task(
            "PrepareJob",
            {"stage": stage.key, "plan.$": "$.plan", "stages.$": "$.stages", "previous.$": "$.job"},
            select=(
                "stage",
                "name",
                "attempt",
                "startedAt",
                "errors",
                "billableSeconds",
                "unknownBillingAttempts",
                "request",
            ),
            result_path="$.job",
            next_state=service,
            on_error=describe,
            error_path=job_error,
            comment=f"Renders the {name} recipe to runs/<run-id>/recipes/{stage.key}/recipe.yaml and builds a "
            "CreateTrainingJob request with a fresh job name for this attempt (on platform bedrock: the Bedrock "
            "request of this attempt)",
        ),
    )
    on_bedrock = Flow()
    flow.add(
        service,
        {
            "Type": "Choice",
            "Comment": "The run's platform: SageMaker training jobs with the Nova recipes, or Bedrock",
            "Choices": [
                {
                    "Variable": "$.plan.platform",
                    "StringEquals": "bedrock",
                    "Next": _on_bedrock(on_bedrock, stage, name, decide=decide, finish=finish),
                }
            ],
            "Default": run,
        },
    )
    flow.add(
        run,
        {
            "Type": "Task",
            "Comment": f"{_JOB_PURPOSE[stage.key]} as a SageMaker training job; Step Functions waits for it (.sync)",
            "Resource": SAGEMAKER_TRAINING_JOB_SYNC,
            "Parameters": _sagemaker_job(stage),
            # Only fields every description has: a path that is missing would fail the run (States.Runtime, which
            # no Catch takes) after the job was paid for. The billable time is read by the step after it.
            "ResultSelector": {f"{field.lower()}.$": f"$.TrainingJob{field}" for field in ("Name", "Status", "Arn")},
            "ResultPath": "$.job.result",
            "Catch": catch_all(decide, job_error),
            "Next": finish,
        },
    )
    flow.extend(on_bedrock)
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
    flow.add(can_retry, boolean_choice("$.job.decision.retry", back_off, describe))
    flow.add(back_off, {"Type": "Wait", "SecondsPath": "$.job.decision.delaySeconds", "Next": prepare})
    flow.add(
        finish,
        lambda_task(
            "ResolveCheckpoint" if stage.training else "ReadEvaluation",
            {"stage": stage.key, "job.$": "$.job", "stages.$": "$.stages", "endedAt.$": "$$.State.EnteredTime"},
            select=_STAGE_RECORD_FIELDS,
            result_path="$.stages",
            next_state=stage.next_state,
            on_error=describe,
            error_path=job_error,
            retry=LAMBDA_RETRY_AFTER_PAID_WORK,
        ),
    )
    described = {"stage": stage.key, "job.$": "$.job"}
    if stage.next_state is None:
        # In a Parallel branch: the failure is noted in the stage's record and the branch ends normally, so the
        # stage beside it finishes and its result is kept (a Fail state would cancel it and lose both branches'
        # records). After the Parallel, a failed training stage ends the run (:func:`_phase`).
        flow.add(
            describe,
            pass_state(
                parameters={"status": "FAILED", "failure": described, "endedAt.$": "$$.State.EnteredTime"},
                result_path=f"$.stages.{stage.key}",
                next_state=failure,
                comment=f"Notes the failure in stages.{stage.key} (recorded in run.json with its error); the "
                "branch then ends normally, so the job beside it keeps running and its result is kept",
            ),
        )
        flow.add(failure, pass_state(comment=_ADVISORY_COMMENT if stage.advisory else _TRAINING_FAILURE_COMMENT))
        return flow
    flow.add(
        describe,
        pass_state(parameters=described, result_path="$.stageFailure", next_state=stage.failure_note or failure),
    )
    return flow


# -- the run -------------------------------------------------------------------------------------------

# Parallel phases: the state's name, why its stages run side by side, and the ``failedStage`` of a failure.
_PARALLEL_PHASES: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("baselineEval", "sft"): (
        "Train and baseline",
        "The baseline evaluation runs beside SFT, off the critical path; its failure is recorded, not fatal",
        "trainAndBaseline",
    ),
    ("sftEval", "rft"): (
        "Evaluate SFT and train RFT",
        "The SFT evaluation runs beside RFT, off the critical path",
        "evaluateSftAndTrainRft",
    ),
}
# Run-level failures: the ``failedStage`` the record shows -> the wording of the state that notes it.
_FAILURE_NOTES = {
    "validateRun": "validation",
    "preflight": "preflight checks",
    "trainAndBaseline": "training and baseline",
    "evaluateSftAndTrainRft": "SFT evaluation and RFT",
    "finalEval": "final evaluation",
    "collectMetrics": "metrics collection",
    "qualityGate": "quality gate",
    "approval": "approval",
    "import": "model import",
    "deploy": "deployment",
    "recordRun": "run record",
}
_RECORD_PAYLOAD = {"run.$": "$", "endedAt.$": "$$.State.EnteredTime"}


def note(failed_stage: str) -> str:
    """The state that notes a run-level failure before the run is recorded as failed."""
    return f"Note failure in {_FAILURE_NOTES[failed_stage]}"


def _run_task(function: str, payload: Mapping[str, Any], *, failed_stage: str, **options: Any) -> State:
    """A run-level Lambda task: a failure is noted under ``failed_stage``, then the run is recorded as failed."""
    return lambda_task(function, payload, on_error=note(failed_stage), error_path="$.error", **options)


def _phase(stages: tuple[str, ...], next_state: str, flow: Flow) -> str:
    """Add one phase; returns the name of its first state."""
    if stages == (FINAL_STAGE,):
        return _final_phase(next_state, flow)
    if len(stages) == 1:
        (stage,) = stages
        loop = job_loop(JobStage(stage, next_state=next_state, failure_note=note(stage)))
        flow.extend(loop)
        return next(iter(loop.states))
    name, comment, failed_stage = _PARALLEL_PHASES[stages]
    # Each stage record comes from the branch that ran the stage; the others are unchanged in every branch.
    selector = {f"{s}.$": f"$[{stages.index(s) if s in stages else 0}].stages.{s}" for s in STAGES}
    # A failed training stage of the phase ends the run once the Parallel has kept every branch's record.
    after = next_state
    for stage in reversed([s for s in stages if STAGE_METHODS[s] != "eval"]):
        question, failed = f"Did {title(stage)} fail?", f"Keep the {title(stage)} failure"
        flow.add(
            question,
            {
                "Type": "Choice",
                "Choices": [{"Variable": f"$.stages.{stage}.status", "StringEquals": "FAILED", "Next": failed}],
                "Default": after,
            },
        )
        flow.add(
            failed,
            {
                "Type": "Pass",
                "InputPath": f"$.stages.{stage}.failure",
                "ResultPath": "$.stageFailure",
                "Next": note(failed_stage),
            },
        )
        after = question
    parallel: State = {
        "Type": "Parallel",
        "Comment": comment,
        "Branches": [job_loop(JobStage(stage)).as_branch() for stage in stages],
        "ResultSelector": selector,
        "ResultPath": "$.stages",
        "Catch": catch_all(note(failed_stage), "$.error"),
        "Next": after,
    }
    return flow.add(name, parallel)


@dataclass(frozen=True)
class BedrockStep:
    """A Bedrock resource the run creates, then waits for: the start task, status checks with backoff, outcomes."""

    start: str  # the start state's name
    start_function: str
    check_function: str
    start_payload: Mapping[str, str]
    comment: str
    result: str  # where the resource's state lives: $.<result>
    fields: tuple[str, ...]
    noun: str  # "model import": Wait for <noun>, Check <noun>
    question: str
    failed_stage: str
    failed: tuple[str, str, str]  # state, error, cause (States.Format)
    timed_out: tuple[str, str, str]


def _bedrock_step(flow: Flow, step: BedrockStep, *, active_next: str, on_failure: str | None = None) -> None:
    """Start, then wait, check, and branch on Active, Failed or too many checks; a failure (at ``$.error``) goes
    to ``on_failure``, by default the note of the step's failed stage."""
    wait, check = f"Wait for {step.noun}", f"Check {step.noun}"
    path, failure = f"$.{step.result}", on_failure or note(step.failed_stage)
    common: dict[str, Any] = {"select": step.fields, "result_path": path, "on_error": failure, "error_path": "$.error"}
    flow.add(
        step.start,
        lambda_task(step.start_function, step.start_payload, next_state=wait, comment=step.comment, **common),
    )
    wait_state = {
        "Type": "Wait",
        "Comment": "Backs off between checks: 60 s, doubling, at most 600 s",
        "SecondsPath": f"{path}.poll.waitSeconds",
        "Next": check,
    }
    flow.add(wait, wait_state)
    checked = {f"{step.result}.$": path, "checkedAt.$": "$$.State.EnteredTime"}
    flow.add(check, lambda_task(step.check_function, checked, next_state=step.question, **common))
    choices = [
        {"Variable": f"{path}.status", "StringEquals": "Active", "Next": active_next},
        {"Variable": f"{path}.status", "StringEquals": "Failed", "Next": step.failed[0]},
        {"Variable": f"{path}.poll.exhausted", "BooleanEquals": True, "Next": step.timed_out[0]},
    ]
    flow.add(step.question, {"Type": "Choice", "Choices": choices, "Default": wait})
    for state_name, error, cause in (step.failed, step.timed_out):
        outcome = {"Error": error, "Cause.$": cause}
        flow.add(state_name, pass_state(parameters=outcome, result_path="$.error", next_state=failure))


_MODEL_IMPORT = BedrockStep(
    start="Import model into Bedrock",
    start_function="ImportModel",
    check_function="CheckModelImport",
    start_payload={
        "plan.$": "$.plan",
        "stages.$": "$.stages",
        "candidate.$": "$.gate.candidate",
        "startedAt.$": "$$.State.EnteredTime",
    },
    comment="CreateCustomModel from the gate's candidate checkpoint (idempotent: clientRequestToken from the run id); "
    "on the Bedrock road the candidate's customization job model is adopted instead",
    result="model",
    fields=(
        "arn",
        "name",
        "checkpoint",
        "status",
        "failureMessage",
        "poll",
        "startedAt",
        "endedAt",
        "deletedAt",
        # The Bedrock road: a customization job's model, adopted (lambdas/pipeline/bedrock.py).
        "origin",
        "stage",
        "provisionalDeploymentArn",
        "note",
    ),
    noun="model import",
    question="Is the model imported?",
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
_DEPLOYMENT = BedrockStep(
    start="Deploy model on demand",
    start_function="DeployModel",
    check_function="CheckDeployment",
    start_payload={
        "plan.$": "$.plan",
        "model.$": "$.model",
        "stages.$": "$.stages",
        "startedAt.$": "$$.State.EnteredTime",
    },
    comment="The pipeline's stable on-demand deployment serves the imported model: created by the first run "
    "(CreateCustomModelDeployment; on the Bedrock road the evaluation's provisional deployment is adopted), moved by "
    "later runs (UpdateCustomModelDeployment); the model stays if this fails",
    result="deployment",
    fields=(
        "arn",
        "name",
        "modelArn",
        "status",
        "failureMessage",
        "poll",
        "startedAt",
        "endedAt",
        "action",
        "previousModelArn",
        "replacedDeploymentArn",
    ),
    noun="deployment",
    question="Is the deployment active?",
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


def _approval(flow: Flow, next_state: str, declined: str) -> str:
    """With approval required (context ``approval``), wait for a decision before ``next_state``; a rejection or
    no decision in time goes to ``declined``. Returns the first state. The mode and timeout are deploy-time
    substitutions (:mod:`lambdas.pipeline.approval`)."""
    read, required, wait = "Load approval setting", "Is approval required?", "Wait for approval"
    expired, approved = "Approval expired", "Was the model approved?"
    setting = {"mode": "${ApprovalMode}", "timeoutSeconds.$": "States.StringToJson('${ApprovalTimeoutSeconds}')"}
    flow.add(read, pass_state(parameters=setting, result_path="$.approval", next_state=required))
    choices = [{"Variable": "$.approval.mode", "StringEquals": "required", "Next": wait}]
    flow.add(required, {"Type": "Choice", "Choices": choices, "Default": next_state})
    payload = {
        "taskToken.$": "$$.Task.Token",
        "runId.$": "$.plan.runId",
        "requestedAt.$": "$$.State.EnteredTime",
        "timeoutSeconds.$": "$.approval.timeoutSeconds",
        "gate.$": "$.gate",
    }
    flow.add(
        wait,
        {
            "Type": "Task",
            "Comment": "Stores the task token under runs/<run-id>/ and notifies how to decide; the run waits until "
            "approvals/<run-id>.json in the data bucket is applied (SendTaskSuccess) or the timeout passes",
            "Resource": LAMBDA_INVOKE_WAIT_FOR_TASK_TOKEN,
            "Parameters": {"FunctionName": function_placeholder("RequestApproval"), "Payload": payload},
            "TimeoutSecondsPath": "$.approval.timeoutSeconds",
            "ResultPath": "$.approval.decision",
            "Retry": [dict(LAMBDA_RETRY_AFTER_PAID_WORK)],
            "Catch": [
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.approvalTimeout", "Next": expired},
                *catch_all(note("approval"), "$.error"),
            ],
            "Next": approved,
        },
    )
    outcome = {
        "decision": "expired",
        "reason.$": "States.Format('no decision within {} seconds', $.approval.timeoutSeconds)",
    }
    flow.add(
        expired,
        pass_state(
            parameters=outcome,
            result_path="$.approval.decision",
            next_state=declined,
            comment="Recorded as APPROVAL_EXPIRED and notified; nothing is deployed (a model imported beside the "
            "final evaluation is deleted)",
        ),
    )
    choices = [{"Variable": "$.approval.decision.decision", "StringEquals": "approve", "Next": next_state}]
    comment = "A rejection is recorded as REJECTED with its reason and notified; nothing is deployed"
    flow.add(approved, {"Type": "Choice", "Comment": comment, "Choices": choices, "Default": declined})
    return read


# The import of the final evaluation's checkpoint, beside that evaluation: the checkpoint exists once RFT (or SFT)
# has ended, so the import no longer waits for the evaluation (SFT + RFT + max(final eval, import) + deploy).
_EARLY_IMPORT = replace(
    _MODEL_IMPORT,
    start="Import the candidate beside the final evaluation",
    start_payload={"plan.$": "$.plan", "stages.$": "$.stages", "startedAt.$": "$$.State.EnteredTime"},
    comment="CreateCustomModel from the checkpoint the final evaluation judges (RFT's, else SFT's) while it is "
    "evaluated; deployed only if the gate passes and chooses it, deleted otherwise",
    noun="candidate import",
    question="Is the candidate imported?",
    failed=("Candidate import failed", *_MODEL_IMPORT.failed[1:]),
    timed_out=("Candidate import timed out", *_MODEL_IMPORT.timed_out[1:]),
)
_OUTCOME = "$.finalPhase.import"


def _delete_model(flow: Flow, name: str, *, next_state: str, on_error: str, error_path: str, why: str) -> str:
    """A DeleteCustomModel task for the imported model (``$.model``) the run will not deploy (on the Bedrock road
    the customization job's model is kept and its provisional deployment deleted, ``reason`` = ``why``)."""
    payload = {"model.$": "$.model", "checkedAt.$": "$$.State.EnteredTime", "stages.$": "$.stages", "reason": why}
    task = lambda_task(
        "DeleteModel",
        payload,
        select=_MODEL_IMPORT.fields,
        result_path="$.model",
        next_state=next_state,
        on_error=on_error,
        error_path=error_path,
        comment=f"DeleteCustomModel: {why} (on the Bedrock road the customization job's model is kept and its "
        "provisional deployment deleted)",
    )
    return flow.add(name, task)


def _model_present(question: str, when_present: str, otherwise: str) -> State:
    return {
        "Type": "Choice",
        "Comment": question,
        "Choices": [{"Variable": "$.model", "IsPresent": True, "Next": when_present}],
        "Default": otherwise,
    }


def _final_phase(next_state: str, flow: Flow) -> str:
    """The final evaluation beside the import of the checkpoint it judges; returns the Parallel's name."""
    imported = Flow()
    skipped, done, failed = "Candidate import skipped", "Candidate imported", "Did the candidate import start?"
    imported.add(
        "Should the candidate be imported now?", boolean_choice(f"{ENABLED}.deploy", _EARLY_IMPORT.start, skipped)
    )
    # Every outcome has the same three fields, so the Parallel's ResultSelector always finds them.
    outcome = {"status": "SKIPPED", "model": None, "error": None}
    imported.add(skipped, pass_state(result=outcome, result_path="$.importOutcome"))
    _bedrock_step(imported, _EARLY_IMPORT, active_next=done, on_failure=failed)
    imported.add(
        done,
        pass_state(parameters={"status": "Active", "model.$": "$.model", "error": None}, result_path="$.importOutcome"),
    )
    ended = "The branch ends normally, so the final evaluation beside it finishes and is recorded"
    started, not_started = "Candidate import ended in failure", "Candidate import not started"
    imported.add(failed, _model_present("A failed model is recorded with its ARN", started, not_started))
    for name, model in ((started, {"model.$": "$.model"}), (not_started, {"model": None})):
        failed_outcome = {"status": "Failed", **model, "error.$": "$.error"}
        imported.add(name, pass_state(parameters=failed_outcome, result_path="$.importOutcome", comment=ended))
    keep, which, eval_failed = (
        "Keep the final evaluation",
        "Was the candidate imported?",
        "Did the final evaluation fail?",
    )
    flow.add(
        keep,
        {"Type": "Pass", "InputPath": "$.finalPhase.stages", "ResultPath": "$.stages", "Next": which},
    )
    flow.add(
        which,
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": f"{_OUTCOME}.status", "StringEquals": "Active", "Next": "Keep the imported candidate"},
                {"Variable": f"{_OUTCOME}.status", "StringEquals": "Failed", "Next": "Keep the failed import"},
            ],
            "Default": eval_failed,
        },
    )
    keep_model = {"Type": "Pass", "InputPath": f"{_OUTCOME}.model", "ResultPath": "$.model"}
    flow.add("Keep the imported candidate", {**keep_model, "Next": eval_failed})
    flow.add("Keep the failed import", {**keep_model, "Next": "Keep the import failure"})
    keep_error = {"Type": "Pass", "InputPath": f"{_OUTCOME}.error", "ResultPath": "$.error", "Next": note("import")}
    flow.add("Keep the import failure", keep_error)
    failure, left = "Keep the final evaluation failure", "Is a model left after the failed evaluation?"
    flow.add(
        eval_failed,
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"$.stages.{FINAL_STAGE}.status", "StringEquals": "FAILED", "Next": failure}],
            "Default": next_state,
        },
    )
    flow.add(
        failure,
        {
            "Type": "Pass",
            "InputPath": f"$.stages.{FINAL_STAGE}.failure",
            "ResultPath": "$.stageFailure",
            "Next": left,
        },
    )
    delete = "Delete the model of the failed evaluation"
    flow.add(left, _model_present("The candidate was imported but never judged", delete, note(FINAL_STAGE)))
    _delete_model(
        flow,
        delete,
        next_state=note(FINAL_STAGE),
        on_error=note(FINAL_STAGE),
        error_path="$.deletionError",
        why="the final evaluation failed, so the imported candidate is never judged",
    )
    parallel: State = {
        "Type": "Parallel",
        "Comment": "The import of the judged checkpoint runs beside its final evaluation, off the critical path",
        "Branches": [job_loop(JobStage(FINAL_STAGE)).as_branch(), imported.as_branch()],
        # Leaf paths (``$[0].stages.<stage>``), not ``$[0].stages``: a path one step below a branch index is read
        # as a one-element list by the rehearsal's JSONPath evaluator, while AWS reads it as the object.
        "ResultSelector": {
            "stages": {f"{s}.$": f"$[0].stages.{s}" for s in STAGES},
            "import": {f"{field}.$": f"$[1].importOutcome.{field}" for field in outcome},
        },
        "ResultPath": "$.finalPhase",
        "Catch": catch_all(note(FINAL_STAGE), "$.error"),
        "Next": keep,
    }
    return flow.add("Evaluate and import the candidate", parallel)


GATE_CHOICE = "Is the imported model the gate's choice?"
DECLINED = "Was a rejected model imported?"


def _gate_outcome(flow: Flow, *, deploy: str) -> None:
    """After the gate: delete a rejected import; when the model should be deployed, go to ``deploy`` (the
    approval, when required, then :data:`GATE_CHOICE`); deploy the imported model when the gate chose it, else
    delete it and import the gate's choice (the SFT model, better than the RFT model the final evaluation judged)."""
    rejected, chosen = "Delete the rejected model", GATE_CHOICE
    flow.add(DECLINED, _model_present("The gate rejected the candidate", rejected, "Record run"))
    why = "the gate rejected the candidate; nothing is deployed"
    _delete_model(flow, rejected, next_state="Record run", on_error=note("import"), error_path="$.error", why=why)
    flow.add("Should the model be deployed?", boolean_choice(f"{ENABLED}.deploy", deploy, "Record run"))
    other = "Delete the model the gate did not choose"
    flow.add(
        chosen,
        {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.model", "IsPresent": True}, "Next": _MODEL_IMPORT.start},
                {"Variable": "$.gate.candidate", "StringEqualsPath": "$.metrics.candidate", "Next": _DEPLOYMENT.start},
            ],
            "Default": other,
        },
    )
    why = "the gate chose the SFT model over the RFT model imported beside the final evaluation"
    _delete_model(flow, other, next_state=_MODEL_IMPORT.start, on_error=note("import"), error_path="$.error", why=why)


def _take_run_lock(flow: Flow, next_state: str) -> str:
    """The first state: a conditional PutItem that only one execution of the pipeline can pass at a time."""
    me = {"S.$": "$$.Execution.Id"}
    refused, unavailable = "Run refused: another run is active", "Run lock unavailable"
    flow.add(
        "Take run lock",
        {
            "Type": "Task",
            "Comment": "One run at a time, however the execution was started: the lock item is written only when "
            "absent or already this execution's; the notify function deletes it when the execution ends",
            "Resource": DYNAMODB_PUT_ITEM,
            "Parameters": {
                "TableName": "${RunLockTableName}",
                "Item": {
                    run_lock.KEY_ATTRIBUTE: {"S": "${PipelineName}"},
                    run_lock.HOLDER_ATTRIBUTE: me,
                    run_lock.TAKEN_AT_ATTRIBUTE: {"S.$": "$$.State.EnteredTime"},
                },
                "ConditionExpression": run_lock.TAKE_CONDITION,
                "ExpressionAttributeValues": {":me": me},
            },
            "ResultPath": None,
            "Retry": [
                {
                    "ErrorEquals": list(_DYNAMODB_TRANSIENT_ERRORS),
                    "IntervalSeconds": 2,
                    "MaxAttempts": 8,
                    "BackoffRate": 2,
                    "MaxDelaySeconds": 60,
                    "JitterStrategy": "FULL",
                }
            ],
            "Catch": [
                {
                    "ErrorEquals": [f"DynamoDB.{run_lock.CONDITION_FAILED}"],
                    "ResultPath": "$.lockError",
                    "Next": refused,
                },
                *catch_all(unavailable, "$.lockError"),
            ],
            "Next": next_state,
        },
    )
    flow.add(
        refused,
        {
            "Type": "Fail",
            "Comment": "Started nothing; the notify function records the run as REFUSED and says so",
            "Error": run_lock.LOCK_HELD_ERROR,
            "Cause": "another execution of this pipeline holds the run lock (one run at a time); this execution "
            "started nothing: start it again when the active run has ended",
        },
    )
    flow.add(
        unavailable,
        {
            "Type": "Fail",
            "Comment": "The lock table could not be written after the retries: nothing was started",
            "Error": "RunLockUnavailable",
            "CausePath": "States.JsonToString($.lockError)",
        },
    )
    return "Take run lock"


def definition() -> dict[str, Any]:
    """The whole state machine definition (JSONPath)."""
    flow = Flow()
    first = _take_run_lock(flow, "Start run")
    execution = {"id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "startTime.$": "$$.Execution.StartTime"}
    start = pass_state(
        parameters={"input.$": "$", "execution": execution},
        next_state="Validate run",
        comment="Keeps the console input under $.input and the execution facts the run id is derived from",
    )
    flow.add("Start run", start)
    validate = _run_task(
        "ValidateRun",
        {"input.$": "$.input", "execution.$": "$.execution"},
        select=("input", "execution", "plan", "stages"),
        result_path="$",
        next_state="Preflight checks",
        failed_stage="validateRun",
        comment="Parses the run input, lists every problem in one error, resolves the run plan and run id",
    )
    flow.add("Validate run", validate)
    # Phases are built last to first, so each knows the state that follows it.
    phases, first_phase = Flow(), "Collect metrics"
    for stages in reversed(STAGE_PHASES):
        earlier = Flow()
        first_phase = _phase(stages, first_phase, earlier)
        earlier.extend(phases)
        phases = earlier
    preflight = _run_task(
        "Preflight",
        {"plan.$": "$.plan"},
        select=("datasets", "grader", "cost", "quotas", "leakage"),
        result_path="$.preflight",
        next_state="Is this a dry run?",
        failed_stage="preflight",
        comment="Before any GPU spend: cost estimate against the budget, GPU instance quotas, dataset formats "
        "and sizes, grader smoke test",
    )
    flow.add("Preflight checks", preflight)
    dry_run = "A dry run (dryRun in the run input) ends here, before any GPU: recorded as DRY_RUN and notified"
    flow.add("Is this a dry run?", boolean_choice("$.plan.dryRun", "Record run", first_phase, comment=dry_run))
    flow.extend(phases)
    collect = _run_task(
        "CollectMetrics",
        {"plan.$": "$.plan", "stages.$": "$.stages"},
        select=("metric", "candidate", "table", "failed"),
        result_path="$.metrics",
        next_state="Apply quality gate",
        failed_stage="collectMetrics",
        comment="One metrics table: baseline / SFT / RFT",
        retry=LAMBDA_RETRY_AFTER_PAID_WORK,
    )
    flow.add("Collect metrics", collect)
    gate = _run_task(
        "ApplyGate",
        {"plan.$": "$.plan", "metrics.$": "$.metrics"},
        select=("passed", "reasons", "checks", "champion", "championEtag", "candidate"),
        result_path="$.gate",
        next_state="Did the model pass the gate?",
        failed_stage="qualityGate",
        comment="The better of the RFT and SFT models, then minScore, gain over the baseline and, when configured, "
        "the model this pipeline deployed last",
    )
    flow.add("Apply quality gate", gate)
    flow.add(
        "Did the model pass the gate?",
        boolean_choice("$.gate.passed", "Should the model be deployed?", DECLINED),
    )
    _gate_outcome(flow, deploy=_approval(flow, GATE_CHOICE, DECLINED))
    _bedrock_step(flow, _MODEL_IMPORT, active_next=_DEPLOYMENT.start)
    _bedrock_step(flow, _DEPLOYMENT, active_next="Record run")
    record = _run_task(
        "RecordRun",
        _RECORD_PAYLOAD,
        select=("status", "runRecord", "report"),
        result_path="$.record",
        next_state="Run succeeded",
        failed_stage="recordRun",
        retry=LAMBDA_RETRY_AFTER_PAID_WORK,
        comment="runs/<run-id>/run.json and report.html (SUCCEEDED, GATE_REJECTED or DRY_RUN); the champion record "
        "after a deploy",
    )
    flow.add("Record run", record)
    flow.add("Run succeeded", {"Type": "Succeed"})
    for failed_stage in _FAILURE_NOTES:
        noted = pass_state(result=failed_stage, result_path="$.failedStage", next_state="Record failed run")
        flow.add(note(failed_stage), noted)
    record_failure = lambda_task(
        "RecordFailedRun",
        _RECORD_PAYLOAD,
        select=("error", "cause", "runRecord"),
        result_path="$.failure",
        next_state="Run failed",
        on_error="Run failed without a record",
        error_path="$.recordError",
        retry=LAMBDA_RETRY_AFTER_PAID_WORK,
        comment="runs/<run-id>/run.json with status FAILED, the failed stage and its cause, and every partial result",
    )
    flow.add("Record failed run", record_failure)
    failed = {"ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"}
    flow.add("Run failed", {"Type": "Fail", "Comment": "Error and cause name the failed stage", **failed})
    unrecorded = {"Error": "RunRecordFailed", "CausePath": "States.JsonToString($.recordError)"}
    flow.add("Run failed without a record", {"Type": "Fail", **unrecorded})
    phases_text = ", ".join(" || ".join(_short(s) for s in stages) for stages in STAGE_PHASES)
    return {
        "Comment": f"Amazon Nova customization: validate, preflight, {phases_text}, quality gate, Bedrock import "
        "and on-demand deployment, run record.",
        "QueryLanguage": "JSONPath",
        "StartAt": first,
        "TimeoutSeconds": MAX_RUN_SECONDS,
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
