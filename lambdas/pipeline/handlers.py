"""Lambda handlers of the pipeline's stages (``lambdas.pipeline.handlers.<name>``).

Each handler parses its event into the models of :mod:`lambdas.pipeline.schema`, calls
one function of a domain module with the AWS clients it needs, and returns the JSON of
the result (camelCase, as the state machine selects it from ``$.Payload``). Configuration
comes from :func:`environment` and clients from :func:`client`, both created on first use
(not at import), so the offline rehearsal can set the environment and activate its
simulated AWS first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from lambdas.common import env_names
from lambdas.common.aws_errors import is_access_denied, is_missing
from lambdas.pipeline import (
    approval,
    bedrock,
    bedrock_eval,
    bedrock_jobs,
    gate,
    jobs,
    metrics,
    naming,
    outputs,
    plan,
    preflight,
    quotas,
    record,
    retry,
    serving,
)
from lambdas.pipeline.environment import PipelineEnvironment, load_environment
from lambdas.pipeline.schema import (
    BedrockTrainingRequest,
    Champion,
    CollectedMetrics,
    Deployment,
    Execution,
    ImportedModel,
    JobAttempt,
    Plan,
    RunRecord,
    RunState,
    StageName,
    StageRecords,
)
from lambdas.pipeline.stages import job_record

logger = Logger()

Stage = StageName


@lru_cache(maxsize=1)
def environment() -> PipelineEnvironment:
    """The function's configuration, validated on first use."""
    return load_environment(os.environ)


@cache
def client(service: str) -> Any:
    """A boto3 client with standard retries (throttling backs off inside the call)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, region_name=environment().region, config=Config(retries={"mode": "standard", "max_attempts": 8})
    )


@lru_cache(maxsize=1)
def bedrock_client() -> Any:
    """The Bedrock control-plane client, checked for the custom-model operations."""
    import boto3

    bedrock_api = client("bedrock")
    bedrock.require_operations(bedrock_api, boto3.__version__)
    return bedrock_api


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ValidateRunEvent(_Event):
    input: Any
    execution: Execution


class PlanEvent(_Event):
    plan: Plan


class PrepareJobEvent(_Event):
    stage: Stage
    plan: Plan
    stages: StageRecords
    previous: JobAttempt


class DecideRetryEvent(_Event):
    stage: Stage
    plan: Plan
    job: JobAttempt


class FinishJobEvent(_Event):
    stage: Stage
    job: JobAttempt
    stages: StageRecords
    endedAt: str | None = None


class PlanStagesEvent(_Event):
    plan: Plan
    stages: StageRecords


class GateEvent(_Event):
    plan: Plan
    metrics: CollectedMetrics


class ImportEvent(PlanStagesEvent):
    candidate: Literal["sft", "rft"] | None = None
    startedAt: str | None = None


class ModelEvent(_Event):
    model: ImportedModel
    checkedAt: str | None = None
    # "Delete model" on the Bedrock road: the stage records (the provisional deployment) and why it is not deployed.
    stages: StageRecords | None = None
    reason: str | None = None


class DeployEvent(_Event):
    plan: Plan
    model: ImportedModel
    startedAt: str | None = None
    stages: StageRecords | None = None


class DeploymentEvent(_Event):
    deployment: Deployment
    checkedAt: str | None = None


class RecordEvent(_Event):
    run: RunState
    endedAt: str | None = None


# -- adapters between boto3 and the domain modules ----------------------------------------------


@contextmanager
def _object_errors(key: str) -> Iterator[None]:
    """S3 errors as the domain modules expect them: LookupError (missing), PermissionError (access denied)."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as error:
        if is_missing(error):
            raise LookupError(key) from error
        if is_access_denied(error):
            raise PermissionError(key) from error
        raise


def _head_object(bucket: str, key: str) -> dict[str, Any]:
    with _object_errors(key):
        head: dict[str, Any] = client("s3").head_object(Bucket=bucket, Key=key)
    return head


def _read_object(bucket: str, key: str) -> bytes:
    """The object's bytes, read up to one byte past the plan's size limit (so a huge object is not loaded)."""
    with _object_errors(key):
        stream = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        try:
            body: bytes = stream.read(plan.MAX_RUN_RECORD_BYTES + 1)
        finally:
            stream.close()
    return body


def _grader_version(name: str) -> str | None:
    from lambdas.reward.presets import load_grader

    try:
        return load_grader(name).version
    except ValueError:
        return None


def _grader_spec(name: str) -> dict[str, Any]:
    from lambdas.reward.presets import load_grader

    spec: dict[str, Any] = load_grader(name).spec
    return spec


def _read_champion(bucket: str, pipeline_name: str) -> tuple[Champion | None, str | None]:
    """The champion record and its ETag (the version "Record run" may replace), ``(None, None)`` when absent."""
    return record.read_champion(client("s3"), bucket, pipeline_name)


def _log(message: str, error: Exception) -> None:
    logger.warning(message, extra={"error": repr(error)})


# -- handlers -----------------------------------------------------------------------------------


@logger.inject_lambda_context(log_event=False)
def validate_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Validate run: the run plan and the initial stage records, or one error listing every problem."""
    parsed = ValidateRunEvent.model_validate(event)
    env = environment()
    resolved, stages = plan.resolve_plan(
        parsed.input,
        execution=parsed.execution,
        pipeline_name=env.pipeline_name,
        data_bucket=env.data_bucket,
        artifacts_bucket=env.artifacts_bucket,
        graders=env.grader_functions,
        grader_version=_grader_version,
        head_object=_head_object,
        read_object=_read_object,
        policy=env.run_policy,
    )
    logger.info("run plan resolved", extra={"run_id": resolved.runId, "enabled": resolved.enabled.to_json()})
    return {
        "input": parsed.input,
        "execution": parsed.execution.to_json(),
        "plan": resolved.to_json(),
        "stages": stages.to_json(),
    }


@logger.inject_lambda_context(log_event=False)
def preflight_checks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Preflight checks: budget, GPU quotas, datasets, grader smoke test; raises with every problem."""
    parsed = PlanEvent.model_validate(event)
    from lambdas.reward.verify import verify_grader

    summary = preflight.run_preflight(
        parsed.plan,
        s3=client("s3"),
        grade_batch_for=lambda arn: preflight.lambda_grade_batch(client("lambda"), arn),
        verify_grader=verify_grader,
        grader_spec=_grader_spec,
        quota_lookup=quotas.service_quotas_lookup(client("service-quotas")),
    )
    if summary.quotas.status in ("unchecked", "partly checked") or summary.quotas.warnings:
        logger.warning("GPU quotas", extra={"quotas": summary.quotas.to_json()})
    if summary.leakage is not None and summary.leakage.warnings:
        logger.warning("evaluation prompts in the training data", extra={"leakage": summary.leakage.to_json()})
    if summary.cost.runtimeWarnings:
        logger.warning("maximum runtimes", extra={"warnings": summary.cost.runtimeWarnings})
    logger.info("pre-flight passed", extra={"cost": summary.cost.estimatedUsd, "expected": summary.cost.expectedUsd})
    return summary.to_json()


@logger.inject_lambda_context(log_event=False)
def prepare_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Prepare <stage> job: render and upload the recipe, build the next attempt's job request."""
    parsed = PrepareJobEvent.model_validate(event)
    on_bedrock = parsed.plan.platform == "bedrock"
    job = jobs.prepare_job(
        stage=parsed.stage,
        plan=parsed.plan,
        stages=parsed.stages,
        previous=parsed.previous,
        region=environment().region,
        s3=client("s3"),
        sagemaker=None if on_bedrock else client("sagemaker"),
        bedrock=bedrock_client() if on_bedrock else None,
    )
    logger.info("job prepared", extra={"stage": parsed.stage, "job_name": job.name, "attempt": job.attempt})
    return job.to_json()


@logger.inject_lambda_context(log_event=False)
def decide_retry(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Decide whether to retry the <stage> job: retryable error and attempts left; the backoff."""
    parsed = DecideRetryEvent.model_validate(event)
    decision = retry.decide(stage=parsed.stage, plan=parsed.plan, job=parsed.job)
    logger.info(
        "retry decided",
        extra={"stage": parsed.stage, "job_name": parsed.job.name, "retry": decision.retry, "reason": decision.reason},
    )
    return decision.to_json()


def _finish_job(
    event: dict[str, Any], read: Callable[[Any, str, JobAttempt], dict[str, Any]], message: str
) -> dict[str, Any]:
    """Read the job's output archive (``read`` gives the stage record's fields), log what it found, record the
    job SUCCEEDED; the updated stages."""
    parsed = FinishJobEvent.model_validate(event)
    job = _with_billable_seconds(parsed.job)
    archive = job.prepared_request().outputArchive
    found = read(client("s3"), archive, job)
    logger.info(message, extra={"stage": parsed.stage, **{k: v for k, v in found.items() if k != "metric_stats"}})
    stage_record = job_record(job, status="SUCCEEDED", ended_at=parsed.endedAt, **found)
    return parsed.stages.replace(parsed.stage, stage_record).to_json()


def _with_billable_seconds(job: JobAttempt) -> JobAttempt:
    """``job`` with its finished attempt's ``BillableTimeInSeconds`` (DescribeTrainingJob); unchanged when the
    description cannot be read or has none, so the attempt counts as unknown and the run goes on."""
    from botocore.exceptions import BotoCoreError, ClientError

    if job.result is None or job.result.billableSeconds is not None or not job.name:
        return job
    try:
        described = client("sagemaker").describe_training_job(TrainingJobName=job.name)
    except (ClientError, BotoCoreError) as error:  # billing is reported, never a reason to lose a finished job
        logger.warning("billable time not read", extra={"job": job.name, "error": repr(error)})
        return job
    seconds = described.get("BillableTimeInSeconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        return job
    return job.model_copy(update={"result": job.result.model_copy(update={"billableSeconds": seconds})})


def _job_account(job: JobAttempt) -> str:
    """The account the job ran in: its training job ARN's, else the account of the Bedrock import role."""
    account = naming.account_of_arn(job.result.arn if job.result else None)
    account = account or naming.account_of_arn(environment().bedrock_import_role_arn)
    if account is None:
        raise ValueError(f"the account of job {job.name} is unknown: it has no training job ARN")
    return account


def _checkpoint(s3: Any, archive: str, job: JobAttempt) -> dict[str, Any]:
    return {"checkpoint": outputs.read_checkpoint(s3, archive, job.name or "", account=_job_account(job))}


def _evaluation(s3: Any, archive: str, job: JobAttempt) -> dict[str, Any]:
    results = outputs.read_evaluation(s3, archive, job.name or "")
    return {"metrics": results.metrics, "metric_stats": results.stats or None}


def _bedrock_evaluation(s3: Any, job: JobAttempt) -> dict[str, Any]:
    """What an evaluation through Bedrock inference found (its ``results.json``), for the stage record."""
    progress = job.evaluation or {}
    results_uri = progress.get("resultsUri")
    if not progress.get("done") or not results_uri:
        raise bedrock_eval.EvaluationFailed(
            f"evaluation {job.name} has not finished: job.evaluation.resultsUri is unset"
        )
    results, document = bedrock_eval.read_results(s3, str(results_uri), job.name or "")
    output_uri = str(results_uri).rsplit("/", 1)[0] + "/"
    return {
        "metrics": results.metrics,
        "metric_stats": results.stats or None,
        "output_uri": output_uri,
        "deployment_arn": document.get("deploymentArn"),
    }


@logger.inject_lambda_context(log_event=False)
def resolve_checkpoint(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve <stage> checkpoint: manifest.json -> checkpoint_s3_bucket (on platform bedrock: the customization
    job's output model, GetModelCustomizationJob); returns the updated stages."""
    parsed = FinishJobEvent.model_validate(event)
    if isinstance(parsed.job.request, BedrockTrainingRequest):
        return _finish_customization(parsed).to_json()
    return _finish_job(event, _checkpoint, "checkpoint resolved")


def _finish_customization(parsed: FinishJobEvent) -> StageRecords:
    """The stage record of a completed Bedrock customization job: its ARN and output model (no checkpoint,
    no GPU billing); a job that did not complete raises with Bedrock's failure message."""
    job = parsed.job
    request = job.request
    if not job.name or not isinstance(request, BedrockTrainingRequest):
        raise ValueError(f"the {parsed.stage} job has no Bedrock customization request: it was never prepared")
    finished = bedrock_jobs.finished_job(bedrock_client(), job.name)
    logger.info("custom model resolved", extra={"stage": parsed.stage, "custom_model_arn": finished.custom_model_arn})
    record = job_record(
        job,
        status="SUCCEEDED",
        ended_at=parsed.endedAt or finished.end_time,
        job_arn=finished.job_arn,
        custom_model_arn=finished.custom_model_arn,
        output_uri=request.outputUri,
    )
    # Bedrock bills customization by tokens, not instance-seconds: no GPU billing to count.
    record = record.model_copy(update={"billableSeconds": None, "unknownBillingAttempts": 0, "actualUsd": None})
    return parsed.stages.replace(parsed.stage, record)


@logger.inject_lambda_context(log_event=False)
def read_evaluation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Read <stage> evaluation results: results_*.json metrics, per-sample rft_eval rewards averaged (an evaluation
    through Bedrock inference: its results.json); returns the updated stages."""
    parsed = FinishJobEvent.model_validate(event)
    if parsed.job.evaluation is None:
        return _finish_job(event, _evaluation, "evaluation read")
    found = _bedrock_evaluation(client("s3"), parsed.job)
    logger.info("evaluation read", extra={"stage": parsed.stage, "metrics": found["metrics"]})
    stage_record = job_record(parsed.job, status="SUCCEEDED", ended_at=parsed.endedAt, **found)
    return parsed.stages.replace(parsed.stage, stage_record).to_json()


def _evaluation_clients() -> bedrock_eval.Clients:
    import boto3
    from botocore.config import Config

    from lambdas.reward.bedrock import bedrock_runtime_client

    region = environment().region
    return bedrock_eval.Clients(
        s3=client("s3"),
        bedrock=bedrock_client(),
        runtime=bedrock_runtime_client(
            region=region,
            read_timeout_s=300,
            connect_timeout_s=10,
            max_attempts=6,
            max_pool_connections=bedrock_eval.MAX_CONCURRENCY,
        ),
        # A grader may take minutes for a batch (an LLM judge): wait as long as the function may run.
        lambda_=boto3.client(
            "lambda",
            region_name=region,
            config=Config(read_timeout=900, retries={"mode": "standard", "max_attempts": 3}),
        ),
    )


@logger.inject_lambda_context(log_event=False)
def evaluate_on_bedrock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EvaluateOnBedrock: one step of an evaluation through Bedrock inference (deploy, invoke, score); the
    progress the state machine keeps at ``$.job.evaluation``."""
    parsed = DecideRetryEvent.model_validate(event)
    progress = bedrock_eval.evaluate(
        parsed.stage, parsed.plan, parsed.job, clients=_evaluation_clients(), context=context
    )
    logger.info(
        "evaluation progress",
        extra={"stage": parsed.stage, **{k: progress.get(k) for k in ("phase", "processed", "total", "errors")}},
    )
    return progress


@logger.inject_lambda_context(log_event=False)
def collect_metrics(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Collect metrics: the baseline / SFT / RFT table."""
    parsed = PlanStagesEvent.model_validate(event)
    return metrics.collect_metrics(parsed.plan, parsed.stages).to_json()


@logger.inject_lambda_context(log_event=False)
def apply_gate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply quality gate: minScore, gain over the baseline, and the deployed champion."""
    parsed = GateEvent.model_validate(event)
    env = environment()
    # Read whether or not it is compared: "Record run" replaces exactly the version read here, or none.
    champion, champion_etag = _read_champion(env.artifacts_bucket, env.pipeline_name)
    if not parsed.plan.gate.mustBeatDeployed:
        champion = None
    eval_etag = parsed.plan.datasets.eval.etag
    decision = gate.apply_gate(gate=parsed.plan.gate, metrics=parsed.metrics, champion=champion, eval_etag=eval_etag)
    decision = decision.model_copy(update={"championEtag": champion_etag})
    logger.info("gate applied", extra={"passed": decision.passed, "reasons": decision.reasons})
    return decision.to_json()


@logger.inject_lambda_context(log_event=False)
def import_model(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Import model into Bedrock: CreateCustomModel (idempotent per run); on the Bedrock road the customization
    job's custom model is adopted instead."""
    parsed = ImportEvent.model_validate(event)
    if parsed.plan.platform == "bedrock":
        adopted = bedrock.adopt(bedrock=bedrock_client(), stages=parsed.stages, candidate=parsed.candidate)
        logger.info("custom model adopted", extra={"model_arn": adopted.arn, "stage": adopted.stage})
        return adopted.model_copy(update={"startedAt": parsed.startedAt}).to_json()
    env = environment()
    model = bedrock.start_import(
        bedrock=bedrock_client(),
        plan=parsed.plan,
        stages=parsed.stages,
        candidate=parsed.candidate,
        role_arn=env.bedrock_import_role_arn,
        kms_key_arn=env.model_kms_key_arn,
    )
    logger.info("model import started", extra={"model_arn": model.arn, "checkpoint": model.checkpoint})
    return model.model_copy(update={"startedAt": parsed.startedAt}).to_json()


@logger.inject_lambda_context(log_event=False)
def check_model_import(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Check model import: GetCustomModel status and the next wait."""
    parsed = ModelEvent.model_validate(event)
    return bedrock.check_import(bedrock=bedrock_client(), model=parsed.model, checked_at=parsed.checkedAt).to_json()


@logger.inject_lambda_context(log_event=False)
def delete_model(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Delete model: DeleteCustomModel of an imported model the run does not deploy; a customization job's model
    is kept and its provisional deployment deleted instead."""
    parsed = ModelEvent.model_validate(event)
    if parsed.model.origin == "customization":
        kept = bedrock.keep_adopted(
            bedrock=bedrock_client(), model=parsed.model, stages=parsed.stages, reason=parsed.reason
        )
        logger.info("custom model kept", extra={"model_arn": kept.arn, "note": kept.note})
        return kept.to_json()
    deleted = bedrock.delete_model(bedrock=bedrock_client(), model=parsed.model, deleted_at=parsed.checkedAt)
    logger.info("imported model deleted", extra={"model_arn": deleted.arn})
    return deleted.to_json()


@logger.inject_lambda_context(log_event=False)
def deploy_model(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Deploy model on demand: the pipeline's stable deployment moves to the model (created by the first run)."""
    parsed = DeployEvent.model_validate(event)
    env = environment()
    champion, _ = _read_champion(env.artifacts_bucket, env.pipeline_name)
    model = parsed.model
    provisional = model.provisionalDeploymentArn or (
        bedrock.provisional_deployment(parsed.stages, model.stage) if parsed.stages is not None else None
    )
    deployment = serving.start_serving(
        bedrock=bedrock_client(), plan=parsed.plan, model=model, champion=champion, provisional=provisional
    )
    logger.info("deployment started", extra={"deployment_arn": deployment.arn, "action": deployment.action})
    return deployment.model_copy(update={"startedAt": parsed.startedAt}).to_json()


@logger.inject_lambda_context(log_event=False)
def check_deployment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Check deployment: GetCustomModelDeployment status (of the creation or the update) and the next wait."""
    parsed = DeploymentEvent.model_validate(event)
    checked = serving.check_serving(bedrock=bedrock_client(), deployment=parsed.deployment, checked_at=parsed.checkedAt)
    return checked.to_json()


def _render_report(run: RunRecord) -> str:
    from lambdas.pipeline.report import render_report

    return render_report(run)


def _crown(env: PipelineEnvironment, deployment: Deployment | None) -> Callable[[Champion], Champion]:
    """The champion record after a deployment: history from the previous one, superseded resources deleted."""

    def crown(new: Champion) -> Champion:
        previous, _ = _read_champion(env.artifacts_bucket, env.pipeline_name)
        champion, problems = serving.retire(
            bedrock=bedrock_client(),
            champion=serving.crown(new, previous),
            retention=env.model_retention,
            replaced_deployments=[deployment.replacedDeploymentArn]
            if deployment and deployment.replacedDeploymentArn
            else [],
        )
        for problem in problems:
            logger.warning("not retired", extra={"problem": problem})
        return champion

    return crown


def _record(event: dict[str, Any], write: Callable[..., dict[str, Any]], **options: Any) -> dict[str, Any]:
    """Parse the run state and write its record with ``write`` (``record.record_run`` or ``record_failed_run``)."""
    parsed = RecordEvent.model_validate(event)
    env = environment()
    run = parsed.run
    if run.plan is not None and run.plan.platform == "bedrock":
        options["provisional"] = bedrock.clean_up_provisional(
            bedrock=bedrock_client(),
            found=bedrock.provisional_deployments(run.stages, run.stageFailure),
            serving=bedrock.serving_deployment(run.deployment),
        )
    if options.pop("crown", False):
        options["crown"] = _crown(env, parsed.run.deployment)
    return write(
        parsed.run,
        s3=client("s3"),
        bucket=env.artifacts_bucket,
        ended_at=parsed.endedAt,
        region=env.region,
        pipeline_name=env.pipeline_name,
        render_report=_render_report,
        log=_log,
        **options,
    )


@logger.inject_lambda_context(log_event=False)
def record_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record run: run.json and report.html (SUCCEEDED or GATE_REJECTED), champion after a deployment."""
    written = _record(event, record.record_run, crown=True)
    logger.info("run recorded", extra=written)
    return written


@logger.inject_lambda_context(log_event=False)
def record_failed_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record failed run: run.json with status FAILED, the failed stage and its cause."""
    written = _record(event, record.record_failed_run)
    logger.info("failed run recorded", extra={"error": written["error"], "run_record": written["runRecord"]})
    return written


# The event model each handler parses (the state machine's Payload must provide their fields).
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "validate_run": ValidateRunEvent,
    "preflight_checks": PlanEvent,
    "prepare_job": PrepareJobEvent,
    "decide_retry": DecideRetryEvent,
    "evaluate_on_bedrock": DecideRetryEvent,  # the same fields: stage, plan, job
    "resolve_checkpoint": FinishJobEvent,
    "read_evaluation": FinishJobEvent,
    "collect_metrics": PlanStagesEvent,
    "apply_gate": GateEvent,
    "import_model": ImportEvent,
    "check_model_import": ModelEvent,
    "delete_model": ModelEvent,
    "deploy_model": DeployEvent,
    "check_deployment": DeploymentEvent,
    "record_run": RecordEvent,
    "record_failed_run": RecordEvent,
}

__all__ = [
    "EVENT_MODELS",
    "apply_gate",
    "check_deployment",
    "check_model_import",
    "collect_metrics",
    "decide_retry",
    "delete_model",
    "deploy_model",
    "evaluate_on_bedrock",
    "import_model",
    "prepare_job",
    "preflight_checks",
    "read_evaluation",
    "record_failed_run",
    "record_run",
    "resolve_checkpoint",
    "validate_run",
]


def _approval_buckets() -> approval.Buckets:
    env = environment()
    return approval.Buckets(data=env.data_bucket, artifacts=env.artifacts_bucket)


@logger.inject_lambda_context(log_event=False)
def request_approval(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wait for approval (``.waitForTaskToken``): keep the task token, notify how to approve or reject."""
    requested = approval.request_approval(
        event,
        s3=client("s3"),
        sns=client("sns"),
        buckets=_approval_buckets(),
        topic_arn=os.environ.get(env_names.TOPIC_ARN),
    )
    logger.info("approval requested", extra={"run_id": requested["runId"], "token": requested["tokenUri"]})
    return requested


@logger.inject_lambda_context(log_event=False)
def apply_approval(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An ``approvals/<run-id>.json`` object-created event (EventBridge): apply the decision, or say why not."""
    detail = event.get("detail") if isinstance(event, dict) else None
    obj = detail.get("object") if isinstance(detail, dict) else None
    bucket = detail.get("bucket") if isinstance(detail, dict) else None
    if not isinstance(obj, dict) or not isinstance(bucket, dict):
        logger.warning("not an S3 Object Created event", extra={"event": str(event)[:500]})
        return {"ignored": "not an S3 Object Created event"}
    applied = approval.apply_decision(
        str(bucket.get("name", "")),
        str(obj.get("key", "")),
        s3=client("s3"),
        stepfunctions=client("stepfunctions"),
        sns=client("sns"),
        buckets=_approval_buckets(),
        topic_arn=os.environ.get(env_names.TOPIC_ARN),
        at=str(event.get("time") or ""),
    )
    logger.info("approval event", extra=applied)
    return applied
