"""Preparing the job of each attempt of a stage: SageMaker training jobs for Nova recipes
(docs/contracts/training-jobs.md), or on platform ``bedrock`` a Bedrock customization job
(:mod:`lambdas.pipeline.bedrock_jobs`) or a Bedrock evaluation (:mod:`lambdas.pipeline.bedrock_eval`).

For each attempt of a stage, :func:`prepare_job` renders the recipe, uploads it to
``runs/<run-id>/recipes/<stage>/recipe.yaml`` and returns the dynamic parts of the
``CreateTrainingJob`` request that the state machine passes through with ``.$``
paths: a fresh job name, the image, the channels' URIs, the instance settings,
``MaxRuntimeInSeconds`` and the hyperparameters (all strings), derived from the rendered
recipe exactly as AWS's SageMaker Python SDK derives them (:func:`recipes.hyperparameters`):

- ``sagemaker_recipe_local_path`` = ``/opt/ml/input/data/recipe/recipe.yaml`` (the ``recipe`` channel);
- ``base_model`` (the base model) or ``base_model_location`` (a checkpoint);
- RFT: ``reward_lambda_arn``. An ``rft_eval`` job's grader is only in its recipe
  (``rl_env.reward_lambda_arn``); no job sends ``model_type``.

A new attempt (after a capacity, quota, throttling or transient error, up to :func:`max_attempts`;
:mod:`lambdas.pipeline.retry` decides) stops the previous attempt's job if it is somehow still
running, so nothing runs twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdas.common import layout
from lambdas.common.aws_errors import is_missing
from lambdas.pipeline import bedrock_eval, bedrock_jobs, billing, naming, recipes
from lambdas.pipeline.catalog import MODELS, method_image
from lambdas.pipeline.schema import AttemptError, JobAttempt, JobRequest, Plan, StageName, StageRecords, StepError

VOLUME_SIZE_GB = 100
FIRST_RETRY_DELAY_S = 300
MAX_RETRY_DELAY_S = 3600
# A job holds its instances longer than MaxRuntimeInSeconds: provisioning and image download before, the
# upload of outputs after.
JOB_OVERHEAD_S = 3600
# At most this many attempts however long the sibling may run (about two days of waiting at the hourly cap),
# which keeps the execution history far below Step Functions' 25,000 events.
MAX_ATTEMPTS_BESIDE_SIBLING = 48
_STILL_RUNNING = {"InProgress"}
# Earlier attempts' errors kept in a job and its stage record, and how much of each.
MAX_KEPT_ERRORS = 5
MAX_ERROR_CHARS = 200
MAX_CAUSE_CHARS = 1000


class MissingCheckpointError(RuntimeError):
    """A stage needs a checkpoint that no earlier stage produced."""


def candidate_checkpoint(stages: StageRecords) -> tuple[str, str]:
    """``(stage, checkpoint)`` of the model the final evaluation judges and Bedrock imports.

    RFT's checkpoint (trained, or given with ``resumeFrom``), else SFT's; on platform bedrock, where a
    customization job leaves a custom model and no checkpoint, that model's ARN.
    """
    for stage in ("rft", "sft"):
        checkpoint = stages.of(stage).checkpoint or stages.of(stage).customModelArn
        if checkpoint:
            return stage, checkpoint
    raise MissingCheckpointError("neither RFT nor SFT produced a checkpoint to evaluate and import")


def model_location(stage: str, plan: Plan, stages: StageRecords) -> str:
    """What a stage starts from: the base model, the SFT checkpoint or the candidate checkpoint."""
    if stage in ("sft", "baselineEval"):
        return plan.model.modelNameOrPath
    if stage in ("rft", "sftEval"):
        checkpoint = stages.sft.checkpoint
        if not checkpoint:
            raise MissingCheckpointError(f"{naming.STAGE_LABELS[stage]} needs the SFT checkpoint, which is missing")
        return checkpoint
    return candidate_checkpoint(stages)[1]


def retry_delay_seconds(attempt: int) -> int:
    """Backoff before the next attempt: 5 min, 10 min, 20 min... at most an hour."""
    return min(FIRST_RETRY_DELAY_S * (1 << max(attempt - 1, 0)), MAX_RETRY_DELAY_S)


def max_attempts(stage: str, plan: Plan) -> int:
    """How many attempts ``stage`` gets for capacity, quota and throttling errors.

    ``plan.maxJobAttempts`` at least. A job that runs beside another (baseline evaluation
    beside SFT, SFT evaluation beside RFT) may find the sibling holding the instance quota
    (``ResourceLimitExceeded``): it gets enough attempts for its backoff to outlast the
    sibling's maximum runtime plus :data:`JOB_OVERHEAD_S`, so it starts when the sibling
    ends instead of failing (at most :data:`MAX_ATTEMPTS_BESIDE_SIBLING`).
    """
    attempts = plan.maxJobAttempts
    for phase in naming.STAGE_PHASES:
        if stage not in phase:
            continue
        for sibling in phase:
            if sibling == stage or not plan.enabled.runs(sibling):
                continue
            wait = plan.jobs.of(naming.STAGE_METHODS[sibling]).maxRuntimeSeconds + JOB_OVERHEAD_S
            retries, waited = 0, 0
            while waited < wait and retries + 1 < MAX_ATTEMPTS_BESIDE_SIBLING:
                retries += 1
                waited += retry_delay_seconds(retries)
            attempts = max(attempts, retries + 1)
    return attempts


def _attempt_error(previous: JobAttempt, error: StepError) -> AttemptError:
    return AttemptError(
        attempt=previous.attempt,
        job=previous.name,
        error=(error.Error or "")[:MAX_ERROR_CHARS],
        cause=(error.Cause or "")[:MAX_CAUSE_CHARS],
    )


def _stop_if_running(status_of: Callable[[], str], stop: Callable[[], object]) -> str | None:
    """Call ``stop`` when ``status_of()`` says the job still runs; its status (``None`` when it does not exist)."""
    try:
        status = status_of()
    except Exception as error:
        if is_missing(error):
            return None
        raise
    if status in _STILL_RUNNING:
        stop()
    return status


def stop_previous_attempt(sagemaker: Any, job_name: str) -> str | None:
    """Stop training job ``job_name`` if it is still running; returns its status (``None`` when it does not exist)."""
    return _stop_if_running(
        lambda: str(sagemaker.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"]),
        lambda: sagemaker.stop_training_job(TrainingJobName=job_name),
    )


def stop_previous_customization(bedrock: Any, job_name: str) -> str | None:
    """Stop Bedrock customization job ``job_name`` if it is still running; its status (``None``: no such job)."""
    return _stop_if_running(
        lambda: str(bedrock.get_model_customization_job(jobIdentifier=job_name)["status"]),
        lambda: bedrock.stop_model_customization_job(jobIdentifier=job_name),
    )


def prepare_job(
    *,
    stage: StageName,
    plan: Plan,
    stages: StageRecords,
    previous: JobAttempt,
    region: str,
    s3: Any,
    sagemaker: Any = None,
    bedrock: Any = None,
) -> JobAttempt:
    """Render and upload the stage's recipe; return the job of the next attempt. On platform ``bedrock``: the
    Bedrock request of the attempt (``bedrock`` is the Bedrock client that stops a previous attempt's job)."""
    if stage not in naming.STAGE_METHODS:
        raise ValueError(f"unknown stage {stage!r}")
    method = naming.STAGE_METHODS[stage]
    attempt = previous.attempt + 1
    errors = list(previous.errors)
    if previous.lastError is not None:
        errors.append(_attempt_error(previous, previous.lastError))
    # The job travels in the execution state (256 KB at most) and into the stage record: a retry storm
    # keeps its last few errors; the attempt numbers say how many came before.
    errors = errors[-MAX_KEPT_ERRORS:]
    if plan.platform == "bedrock":
        return _prepare_on_bedrock(stage, plan, stages, previous, attempt, errors, bedrock)
    # Every earlier attempt is paid for: a running total, not a list (lambdas.pipeline.billing).
    billed, unknown = billing.totals(previous)
    if previous.name:
        stop_previous_attempt(sagemaker, previous.name)

    run_id = plan.runId
    model = MODELS[plan.model.key]
    settings = plan.jobs.of(method)
    instance_type, instance_count = settings.instances()
    template = recipes.load_template(model.key, method)
    name = naming.training_job_name(plan.pipelineName, run_id, stage, attempt)
    location = model_location(stage, plan, stages)
    task = plan.evaluation.task if method == "eval" else None
    grader_arn = None
    if method == "rft" or task == "rft_eval":
        if plan.grader is None:
            raise ValueError(f"the {naming.STAGE_LABELS[stage]} job needs a grader and the plan has none")
        grader_arn = plan.grader.arn
    # The copy pre-flight made of the validated dataset version, in a folder of its own under the run.
    data_uri = plan.datasets.require(method).stagedUri
    if data_uri is None:
        raise ValueError(f"the {method} dataset has no staged copy for the {naming.STAGE_LABELS[stage]} job")

    recipe = recipes.render(
        template,
        job_name=name,
        model=model,
        model_location=location,
        instance_count=instance_count,
        overrides=settings.overrides,
        reward_lambda_arn=grader_arn,
        data_uri=data_uri,
        task=task,
    )
    bucket = plan.artifactsBucket
    key = layout.recipe_key(run_id, stage)
    s3.put_object(Bucket=bucket, Key=key, Body=recipes.to_yaml(recipe).encode(), ContentType="application/yaml")

    output_path = layout.s3_uri(bucket, layout.job_output_prefix(run_id, stage))
    return JobAttempt(
        stage=stage,
        name=name,
        attempt=attempt,
        startedAt=previous.startedAt,
        errors=errors,
        billableSeconds=billed,
        unknownBillingAttempts=unknown,
        request=JobRequest(
            image=method_image(model, method, region),
            recipeUri=layout.s3_uri(bucket, key.rsplit("/", 1)[0] + "/"),
            recipeFile=layout.s3_uri(bucket, key),
            dataUri=data_uri,
            outputPath=output_path,
            outputArchive=f"{output_path}/{name}/output/output.tar.gz",
            modelLocation=location,
            instanceType=instance_type,
            instanceCount=instance_count,
            volumeSizeInGb=VOLUME_SIZE_GB,
            maxRuntimeInSeconds=settings.maxRuntimeSeconds,
            hyperParameters=recipes.hyperparameters(recipe),
        ),
    )


def _prepare_on_bedrock(
    stage: StageName,
    plan: Plan,
    stages: StageRecords,
    previous: JobAttempt,
    attempt: int,
    errors: list[AttemptError],
    bedrock: Any,
) -> JobAttempt:
    """The next attempt on platform bedrock: a customization job (training) or an evaluation through Bedrock
    inference. A previous attempt's customization job still running is stopped first."""
    training = naming.STAGE_METHODS[stage] != "eval"
    if previous.name and training:
        stop_previous_customization(bedrock, previous.name)
    name = naming.training_job_name(plan.pipelineName, plan.runId, stage, attempt)
    request: Any
    if training:
        request = bedrock_jobs.training_request(stage=stage, plan=plan, stages=stages, job_name=name, attempt=attempt)
    else:
        request = bedrock_eval.evaluation_request(stage, plan, stages, name)
    return JobAttempt(
        stage=stage, name=name, attempt=attempt, startedAt=previous.startedAt, errors=errors, request=request
    )
