"""Training jobs on platform bedrock: Bedrock model customization jobs (docs/contracts/bedrock-customization.md).

For each attempt of a training stage, :func:`training_request` builds the dynamic parts of the
``CreateModelCustomizationJob`` request that the state machine's ``bedrock:createModelCustomizationJob.sync``
Task passes with ``.$`` paths (:class:`lambdas.pipeline.schema.BedrockTrainingRequest`); the job name is the
attempt's (:func:`lambdas.pipeline.naming.training_job_name`, valid for Bedrock's ``JobName`` pattern) and the
custom model's name is fresh per attempt too (:func:`custom_model_name`, Bedrock's ``CustomModelName`` pattern).

A new attempt stops the previous attempt's job if it is still running
(:func:`lambdas.pipeline.jobs.stop_previous_customization`), as the SageMaker road does. After the job,
:func:`finished_job` reads it back (``GetModelCustomizationJob``): its ARN, its output model and its end time;
a job that did not end ``Completed`` is a :class:`CustomizationJobError` whose message carries Bedrock's
``failureMessage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.common import layout
from lambdas.pipeline import bedrock_hyperparameters, naming
from lambdas.pipeline.schema import BedrockTrainingRequest, Plan, StageName, StageRecords

CUSTOMIZATION_TYPES = {"sft": "FINE_TUNING", "rft": "REINFORCEMENT_FINE_TUNING"}


class CustomizationJobError(RuntimeError):
    """A Bedrock customization job that did not complete, with Bedrock's failure message."""


class MissingCustomModelError(RuntimeError):
    """A stage needs a custom model that no earlier stage produced."""


def custom_model_name(plan: Plan, stage: str, attempt: int) -> str:
    """``<pipeline>-<run>-<stage code>-a<attempt>``: Bedrock's ``CustomModelName`` (``([0-9a-zA-Z][_-]?){1,63}``)."""
    suffix = f"-{naming.JOB_STAGE_CODES[stage]}-a{attempt}"
    return naming.bedrock_model_name(plan.pipelineName, plan.runId, suffix)


def base_model(stage: str, plan: Plan, stages: StageRecords) -> str:
    """What the stage's customization job starts from: the base model, or SFT's custom model for an RFT that
    starts from it (``plan.bedrock.rftStartsFrom``)."""
    if plan.bedrock is None:
        raise ValueError("the plan has no bedrock settings: it is not a platform bedrock run")
    if stage == "rft" and plan.bedrock.rftStartsFrom == "sft":
        arn = stages.sft.customModelArn
        if not arn:
            raise MissingCustomModelError("RFT starts from the SFT custom model, which is missing")
        return arn
    return plan.bedrock.baseModelIdentifier


def training_request(
    *, stage: StageName, plan: Plan, stages: StageRecords, job_name: str, attempt: int
) -> BedrockTrainingRequest:
    """The dynamic parts of the stage's ``CreateModelCustomizationJob`` request for this attempt."""
    method = naming.STAGE_METHODS[stage]
    if method not in CUSTOMIZATION_TYPES:
        raise ValueError(f"{stage} is not a training stage")
    data_uri = plan.datasets.require(method).stagedUri
    if data_uri is None:
        raise ValueError(f"the {method} dataset has no staged copy for the {naming.STAGE_LABELS[stage]} job")
    values = bedrock_hyperparameters.resolve(method, plan.model.key, plan.jobs.of(method).overrides)
    output = layout.s3_uri(plan.artifactsBucket, layout.job_output_prefix(plan.runId, stage))
    request: dict[str, Any] = {
        "customModelName": custom_model_name(plan, stage, attempt),
        "baseModelIdentifier": base_model(stage, plan, stages),
        "customizationType": CUSTOMIZATION_TYPES[method],
        "trainingDataUri": data_uri,
        "outputUri": f"{output}/{job_name}/",
        # The Task's TimeoutSecondsPath: the job is stopped (and the stage fails) once it has run this long, which
        # bounds what an hourly-billed job can cost (preflight prices RFT up to this runtime).
        "maxRuntimeSeconds": plan.jobs.of(method).maxRuntimeSeconds,
    }
    if method == "sft":
        request["hyperParameters"] = bedrock_hyperparameters.as_strings(values)
    else:
        if plan.grader is None:
            raise ValueError("the RFT job needs a grader and the plan has none")
        request["rftHyperParameters"] = values
        request["graderArn"] = plan.grader.arn
    return BedrockTrainingRequest.model_validate(request)


@dataclass(frozen=True)
class FinishedJob:
    """What the run keeps of a completed customization job."""

    job_arn: str
    custom_model_arn: str
    end_time: str | None


def finished_job(bedrock: Any, job_name: str) -> FinishedJob:
    """``GetModelCustomizationJob``: the completed job's ARN and output model; CustomizationJobError otherwise."""
    described = bedrock.get_model_customization_job(jobIdentifier=job_name)
    status = described.get("status")
    if status != "Completed":
        reason = described.get("failureMessage") or "no failure message"
        raise CustomizationJobError(f"Bedrock customization job {job_name} ended {status}: {reason}")
    model_arn = described.get("outputModelArn")
    if not model_arn:
        raise CustomizationJobError(f"Bedrock customization job {job_name} completed without an output model ARN")
    end = described.get("endTime")
    return FinishedJob(
        job_arn=str(described["jobArn"]),
        custom_model_arn=str(model_arn),
        end_time=end.isoformat() if hasattr(end, "isoformat") else (None if end is None else str(end)),
    )
