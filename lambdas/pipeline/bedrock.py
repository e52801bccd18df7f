"""Bedrock: import the candidate checkpoint (``CreateCustomModel``) and deploy it on demand
(``CreateCustomModelDeployment``), docs/contracts/bedrock.md.

Both create calls carry a ``clientRequestToken`` derived from the run id, so a retried
Lambda invocation returns the model or deployment it already created instead of a second
one. When the name is taken anyway (``ConflictException``), the existing resource is
reused only if it is this run's: a model imported from the same checkpoint (its
``modelSourceConfig.s3DataSource.s3Uri`` when ``GetCustomModel`` returns it, else the
``nova:checkpoint`` tag the import sets), a deployment of the same model ARN; anything
else raises :class:`NameConflictError` naming the conflicting resource. The state machine polls with
Wait/Choice: each check returns the status and the
next wait (60 s, doubling, at most 600 s) and says when the polls are exhausted.

On the Bedrock road (``plan.platform`` ``bedrock``) the training stages are Bedrock customization jobs whose
output is already a custom model, so nothing is imported: :func:`adopt` takes the candidate's model as the
run's model, with the provisional on-demand deployment its evaluation created; :func:`keep_adopted` keeps a
model the run does not deploy (it is the job's only output) and deletes its provisional deployment; and
:func:`clean_up_provisional` deletes, when the run is recorded, every provisional deployment that does not
serve (or, for a run that ended without its record, the notify function: :mod:`lambdas.notify.service`).

The calls need boto3 >= 1.39.7 (the dependency layer bundles a recent boto3);
:func:`require_operations` fails clearly at cold start if the client lacks them.
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from lambdas.common.aws_errors import error_code
from lambdas.pipeline import naming
from lambdas.pipeline.jobs import candidate_checkpoint
from lambdas.pipeline.schema import (
    Deployment,
    ImportedModel,
    Plan,
    Poll,
    ProvisionalDeployment,
    StageFailure,
    StageName,
    StageRecords,
)

REQUIRED_OPERATIONS = (
    "create_custom_model",
    "get_custom_model",
    "create_custom_model_deployment",
    "get_custom_model_deployment",
    "update_custom_model_deployment",
    "delete_custom_model",
    "delete_custom_model_deployment",
)
FIRST_WAIT_S = 60
MAX_WAIT_S = 600
MAX_IMPORT_POLLS = 36  # about 5.5 hours
MAX_DEPLOYMENT_POLLS = 24  # about 3.5 hours


CHECKPOINT_TAG = "nova:checkpoint"
_TAG_VALUE = re.compile(r"[a-zA-Z0-9\s._:/=+@-]{0,256}")


class NameConflictError(RuntimeError):
    """A model or deployment with this run's name exists but is not this run's."""


class BedrockClientTooOld(RuntimeError):
    """The boto3 in use predates the Bedrock custom-model import and deployment APIs."""


def require_operations(client: Any, boto3_version: str) -> None:
    missing = [op for op in REQUIRED_OPERATIONS if not hasattr(client, op)]
    if missing:
        raise BedrockClientTooOld(
            f"boto3 {boto3_version} has no bedrock {', '.join(missing)}: the functions need boto3 >= 1.39.7 "
            "(bundled in the dependency layer; rebuild it with `make layer`)"
        )


def first_poll(status: str, max_polls: int) -> Poll:
    """The poll state after a start call: check after :data:`FIRST_WAIT_S`."""
    return _poll(None, status, max_polls)


def _poll(previous: Poll | None, status: str, max_polls: int) -> Poll:
    count = (previous.count if previous else -1) + 1
    # A wait of 0 (a resource adopted as it is, checked at once) is followed by the first backoff, not by 0 again.
    wait = FIRST_WAIT_S if previous is None or previous.waitSeconds <= 0 else min(previous.waitSeconds * 2, MAX_WAIT_S)
    return Poll(count=count, waitSeconds=wait, exhausted=count >= max_polls and status not in {"Active", "Failed"})


def _tags(plan: Plan, key_name: str, value_name: str, **extra: str) -> list[dict[str, str]]:
    tags = {"nova:pipeline": plan.pipelineName, "nova:run-id": plan.runId, **extra}
    return [{key_name: k, value_name: v} for k, v in tags.items()]


def start_import(
    *,
    bedrock: Any,
    plan: Plan,
    stages: StageRecords,
    role_arn: str,
    kms_key_arn: str,
    candidate: str | None = None,
) -> ImportedModel:
    """``CreateCustomModel`` from the candidate checkpoint, encrypted with ``kms_key_arn``; idempotent per run.

    Without ``candidate`` (the import beside the final evaluation) the final evaluation's checkpoint is
    imported. ``candidate`` ``sft`` when the final evaluation judged RFT (the gate found the SFT model
    better, after the RFT model was imported and deleted) imports the SFT checkpoint under its own name
    and idempotency token (``-sft``), so it is a new request, not a replay of the RFT import."""
    stage, checkpoint = candidate_checkpoint(stages)
    action, suffix = "import", ""
    if candidate == "sft" and stage != "sft" and stages.sft.checkpoint:
        stage, checkpoint, action, suffix = "sft", stages.sft.checkpoint, "import-sft", "-sft"
    name = naming.bedrock_model_name(plan.pipelineName, plan.runId, suffix)
    extra_tags = {"nova:checkpoint-stage": stage}
    if _TAG_VALUE.fullmatch(checkpoint):
        extra_tags[CHECKPOINT_TAG] = checkpoint
    request = {
        "modelName": name,
        "modelSourceConfig": {"s3DataSource": {"s3Uri": checkpoint}},
        "roleArn": role_arn,
        "modelKmsKeyArn": kms_key_arn,
        "modelTags": _tags(plan, "key", "value", **extra_tags),
        "clientRequestToken": naming.client_request_token(plan.pipelineName, plan.runId, action),
    }
    try:
        arn = str(bedrock.create_custom_model(**request)["modelArn"])
    except Exception as error:
        if error_code(error) != "ConflictException":
            raise
        # The name is taken: reuse it only if it is this run's import (a create call that succeeded
        # although its response was lost), i.e. the same checkpoint.
        arn = _existing_model(bedrock, name, checkpoint)
    return ImportedModel(
        arn=arn,
        name=name,
        checkpoint=checkpoint,
        status="Creating",
        failureMessage=None,
        poll=_poll(None, "Creating", MAX_IMPORT_POLLS),
    )


def _model_source(bedrock: Any, model: dict[str, Any]) -> str | None:
    """The checkpoint an existing model was imported from, or None when it cannot be told."""
    source = ((model.get("modelSourceConfig") or {}).get("s3DataSource") or {}).get("s3Uri")
    if source:
        return str(source)
    tags = bedrock.list_tags_for_resource(resourceARN=model["modelArn"]).get("tags") or []
    return next((str(t.get("value")) for t in tags if t.get("key") == CHECKPOINT_TAG), None)


def _existing_model(bedrock: Any, name: str, checkpoint: str) -> str:
    """The ARN of the model named ``name`` if it was imported from ``checkpoint``; else NameConflictError."""
    existing = bedrock.get_custom_model(modelIdentifier=name)
    source = _model_source(bedrock, existing)
    if source != checkpoint:
        found = f"imported from {source}" if source else "whose source checkpoint is unknown"
        raise NameConflictError(
            f"a Bedrock custom model named {name} already exists ({existing.get('modelArn')}, {found}), "
            f"not imported from this run's checkpoint {checkpoint}; delete or rename that model, or start the run "
            "under another execution name"
        )
    return str(existing["modelArn"])


def _failure(response: dict[str, Any], status: str) -> str | None:
    message = response.get("failureMessage")
    if message:
        return str(message)
    return "no failureMessage returned" if status == "Failed" else None


def checked(
    response: dict[str, Any], status_key: str, poll: Poll | None, max_polls: int, checked_at: str | None = None
) -> dict[str, Any]:
    """What a status check changes in a model or deployment: status, failure message, the next wait and, once
    it is Active or Failed, ``endedAt`` (the check's time)."""
    status = str(response.get(status_key, "Creating"))
    update = {"status": status, "failureMessage": _failure(response, status), "poll": _poll(poll, status, max_polls)}
    if status in {"Active", "Failed"} and checked_at:
        update["endedAt"] = checked_at
    return update


def check_import(*, bedrock: Any, model: ImportedModel, checked_at: str | None = None) -> ImportedModel:
    """``GetCustomModel``: the model's status and the next wait (an adopted model found Active needs no call)."""
    if model.origin == "customization" and model.status == "Active":
        return model.model_copy(update={"poll": _NO_WAIT, "endedAt": model.endedAt or checked_at})
    response = bedrock.get_custom_model(modelIdentifier=model.arn)
    return model.model_copy(update=checked(response, "modelStatus", model.poll, MAX_IMPORT_POLLS, checked_at))


def start_deployment(*, bedrock: Any, plan: Plan, model: ImportedModel) -> Deployment:
    """``CreateCustomModelDeployment`` (on demand) of the imported model; idempotent per run."""
    name = naming.bedrock_deployment_name(plan.pipelineName, plan.runId)
    request = {
        "modelDeploymentName": name,
        "modelArn": model.arn,
        "description": f"Nova customization pipeline {plan.pipelineName}, run {plan.runId}",
        "tags": _tags(plan, "key", "value"),
        "clientRequestToken": naming.client_request_token(plan.pipelineName, plan.runId, "deploy"),
    }
    try:
        arn = str(bedrock.create_custom_model_deployment(**request)["customModelDeploymentArn"])
    except Exception as error:
        if error_code(error) != "ConflictException":
            raise
        # Reuse it only if it deploys this run's model (a create call whose response was lost).
        existing = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=name)
        if existing.get("modelArn") != model.arn:
            raise NameConflictError(
                f"a Bedrock deployment named {name} already exists ({existing.get('customModelDeploymentArn')}) "
                f"for model {existing.get('modelArn')}, not for this run's model {model.arn}; delete that "
                "deployment or start the run under another execution name"
            ) from error
        arn = str(existing["customModelDeploymentArn"])
    return Deployment(
        arn=arn,
        name=name,
        modelArn=model.arn,
        status="Creating",
        failureMessage=None,
        poll=_poll(None, "Creating", MAX_DEPLOYMENT_POLLS),
    )


def check_deployment(*, bedrock: Any, deployment: Deployment, checked_at: str | None = None) -> Deployment:
    """``GetCustomModelDeployment``: the deployment's status and the next wait."""
    response = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment.arn)
    return deployment.model_copy(update=checked(response, "status", deployment.poll, MAX_DEPLOYMENT_POLLS, checked_at))


def delete_model(*, bedrock: Any, model: ImportedModel, deleted_at: str | None = None) -> ImportedModel:
    """``DeleteCustomModel`` of a model the run imported but will not deploy (the gate rejected it, the gate
    chose the other checkpoint, or the final evaluation failed); a model already gone counts as deleted."""
    try:
        bedrock.delete_custom_model(modelIdentifier=model.arn)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
    return model.model_copy(update={"status": "Deleted", "deletedAt": deleted_at})


# -- the Bedrock road: the customization job's model is adopted, not imported ----------------------------------

_NO_WAIT = Poll(count=0, waitSeconds=0, exhausted=False)
_KEPT = "kept: it is the customization job's only output (there is no checkpoint in S3 to import again)"


class ProvisionalDeploymentError(RuntimeError):
    """Bedrock refused to delete a provisional deployment (other than: it is already gone)."""


class MissingCustomModelError(RuntimeError):
    """The stage whose model the run adopts recorded no custom model (``stages.<stage>.customModelArn``)."""


def judged_stage(stages: StageRecords) -> Literal["sft", "rft"]:
    """The training stage whose custom model the final evaluation judges: RFT's, else SFT's."""
    for stage in ("rft", "sft"):
        if stages.of(stage).customModelArn:
            return "rft" if stage == "rft" else "sft"
    raise MissingCustomModelError(
        "stages.rft.customModelArn and stages.sft.customModelArn are both empty: no customization job recorded a "
        "custom model to evaluate and deploy"
    )


def provisional_deployment(stages: StageRecords, stage: str | None) -> str | None:
    """The provisional deployment the evaluation of ``stage``'s model created: the final evaluation's when it
    judged that model, else (the SFT model) the SFT evaluation's; None when that evaluation has not created one
    (yet: the candidate is adopted while the final evaluation runs)."""
    if stage not in ("sft", "rft"):
        return None
    arn = stages.finalEval.deploymentArn if stage == judged_stage(stages) else None
    return arn or (stages.sftEval.deploymentArn if stage == "sft" else None)


def adopt(*, bedrock: Any, stages: StageRecords, candidate: str | None = None) -> ImportedModel:
    """The run's model on the Bedrock road: the custom model of ``candidate`` (the gate's choice), else of the
    stage the final evaluation judges; ``GetCustomModel`` confirms it and gives its name. No ``CreateCustomModel``:
    an Active model is returned with a wait of 0, so the state machine checks it at once."""
    stage = candidate or judged_stage(stages)
    arn = stages.of(stage).customModelArn
    if not arn:
        raise MissingCustomModelError(
            f"stages.{stage}.customModelArn is empty: the {naming.stage_title(stage)} customization job recorded no "
            "custom model to adopt"
        )
    response = bedrock.get_custom_model(modelIdentifier=arn)
    status = str(response.get("modelStatus") or "Active")
    return ImportedModel(
        arn=arn,
        name=str(response.get("modelName") or arn.rsplit("/", 1)[-1]),
        status=status,
        failureMessage=_failure(response, status),
        poll=_NO_WAIT if status == "Active" else first_poll(status, MAX_IMPORT_POLLS),
        origin="customization",
        stage="rft" if stage == "rft" else "sft",
        provisionalDeploymentArn=provisional_deployment(stages, stage),
    )


def delete_deployment(bedrock: Any, arn: str) -> bool:
    """``DeleteCustomModelDeployment``; False when it was already gone (``ResourceNotFoundException``)."""
    try:
        bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return False
    return True


def keep_adopted(
    *, bedrock: Any, model: ImportedModel, stages: StageRecords | None = None, reason: str | None = None
) -> ImportedModel:
    """What "Delete model" does on the Bedrock road: the custom model is kept, its provisional deployment (the
    record's, else the one ``stages`` name) is deleted; ``note`` says what was done and why."""
    provisional = model.provisionalDeploymentArn or (provisional_deployment(stages, model.stage) if stages else None)
    note = (f"not deployed ({reason}); " if reason else "not deployed; ") + _KEPT
    if provisional:
        try:
            gone = "deleted" if delete_deployment(bedrock, provisional) else "already deleted"
        except Exception as error:
            raise ProvisionalDeploymentError(
                f"could not delete {provisional}, the provisional deployment of the {model.stage} model {model.arn} "
                f"(model.provisionalDeploymentArn): {error}"
            ) from error
        note += f"; its provisional deployment {provisional} was {gone}"
    return model.model_copy(update={"provisionalDeploymentArn": provisional, "note": note})


def provisional_deployments(stages: StageRecords | None, failure: StageFailure | None) -> list[tuple[StageName, str]]:
    """``(evaluation stage, deployment ARN)`` of every provisional deployment the run's evaluations created: the
    stage records' ``deploymentArn``, and the deployment an evaluation that failed had reached
    (``job.evaluation.deploymentArn`` of its noted failure or of the run's failed stage)."""
    found: list[tuple[StageName, str]] = []
    failed = [(failure.stage, failure.job)] if failure is not None else []
    for name, record in stages.items() if stages is not None else []:
        if record.deploymentArn:
            found.append((cast(StageName, name), record.deploymentArn))
        if record.failure is not None:
            failed.append((record.failure.stage, record.failure.job))
    for stage, job in failed:
        arn = (job.evaluation or {}).get("deploymentArn")
        if isinstance(arn, str) and arn:
            found.append((stage, arn))
    unique: dict[str, StageName] = {}
    for stage, arn in found:
        unique.setdefault(arn, stage)
    return [(stage, arn) for arn, stage in unique.items()]


def serving_deployment(deployment: Deployment | None) -> str | None:
    """The deployment a run adopted as the pipeline's serving deployment: its ARN once Active, else None."""
    return deployment.arn if deployment is not None and deployment.status == "Active" else None


def clean_up_provisional(
    *, bedrock: Any, found: list[tuple[StageName, str]], serving: str | None
) -> list[ProvisionalDeployment]:
    """Delete every provisional deployment of ``found`` but the one ``serving`` (adopted as the pipeline's
    deployment); one already gone counts as deleted. Never raises: what could not be deleted says why."""
    outcomes: list[ProvisionalDeployment] = []
    for stage, arn in found:
        if arn == serving:
            outcomes.append(ProvisionalDeployment(stage=stage, arn=arn, outcome="serving"))
            continue
        try:
            deleted = delete_deployment(bedrock, arn)
        except Exception as error:  # noqa: BLE001 - reported in the record; the run is recorded anyway
            outcomes.append(ProvisionalDeployment(stage=stage, arn=arn, outcome="not deleted", detail=str(error)))
            continue
        outcomes.append(
            ProvisionalDeployment(stage=stage, arn=arn, outcome="deleted" if deleted else "already deleted")
        )
    return outcomes
