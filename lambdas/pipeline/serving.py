"""One stable on-demand deployment per pipeline: serve, roll back and clean up.

Clients call the pipeline's deployment ARN (the ``modelId`` of ``Converse``); it survives
retraining (docs/contracts/bedrock.md, "The stable deployment"):

- :func:`start_serving` (the "Deploy model on demand" state): the pipeline's first run
  creates the deployment (``CreateCustomModelDeployment``, :func:`bedrock.start_deployment`);
  later runs move the champion's deployment to the new model with
  ``UpdateCustomModelDeployment``. When Bedrock refuses the update (``ValidationException``:
  the deployment is not in a state to update, or the model cannot replace the one it serves),
  the run creates a deployment of its own, which becomes the pipeline's deployment, and the
  old one is deleted once the new one is active (``action: replaced`` in the record).
- :func:`check_serving` ("Check deployment"): ``GetCustomModelDeployment``; an update is done
  when its ``updateDetails`` report ``UpdateCompleted`` for this model.
- :func:`crown` (the "Record run" state): the new champion record, with the models served
  before it in ``history`` (newest first).
- :func:`retire`: deletes the replaced deployment and every custom model beyond the
  ``retention`` newest (the champion's counts as one), marking them ``deleted`` in the history.
- :func:`rollback`: moves the deployment back to the newest model of the history that still
  exists; the model it served goes to the front of the history, so a second rollback undoes
  the first. The caller writes the returned champion record and waits for
  ``GetCustomModelDeployment`` as :func:`check_serving` does.

Every function takes a boto3 ``bedrock`` client and returns records (:mod:`lambdas.pipeline.schema`);
none reads or writes S3.
"""

from __future__ import annotations

from typing import Any

from lambdas.common.aws_errors import error_code
from lambdas.pipeline import bedrock as imports
from lambdas.pipeline.schema import Champion, Deployment, ImportedModel, Plan, ServedModel

DEFAULT_RETENTION = 2
# The update's status (GetCustomModelDeployment updateDetails.updateStatus) -> the deployment status the
# state machine waits on.
_UPDATE_STATUS = {"Updating": "Updating", "UpdateCompleted": "Active", "UpdateFailed": "Failed"}


class NothingToRollBackTo(RuntimeError):
    """The champion record names no earlier model that still exists."""


def _existing_deployment(bedrock: Any, arn: str) -> dict[str, Any] | None:
    try:
        response: dict[str, Any] = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    return response


def start_serving(*, bedrock: Any, plan: Plan, model: ImportedModel, champion: Champion | None) -> Deployment:
    """Serve ``model``: create the pipeline's deployment, or move the champion's deployment to it."""
    stable = champion.deploymentArn if champion else None
    existing = _existing_deployment(bedrock, stable) if stable else None
    if stable is None or existing is None:
        # The first run, or the deployment was deleted outside the pipeline: a new stable deployment.
        return imports.start_deployment(bedrock=bedrock, plan=plan, model=model)
    served = existing.get("modelArn")
    pending = (existing.get("updateDetails") or {}).get("modelArn")
    moved = Deployment(
        arn=str(existing["customModelDeploymentArn"]),
        name=str(existing.get("modelDeploymentName") or stable),
        modelArn=model.arn,
        status="Updating",
        poll=imports.first_poll("Updating", imports.MAX_DEPLOYMENT_POLLS),
        action="updated",
        previousModelArn=str(served) if served else None,
    )
    if model.arn in (served, pending):
        # A retried invocation: this run already moved the deployment.
        return moved
    try:
        bedrock.update_custom_model_deployment(customModelDeploymentIdentifier=moved.arn, modelArn=model.arn)
    except Exception as error:
        if error_code(error) != "ValidationException":
            raise
        created = imports.start_deployment(bedrock=bedrock, plan=plan, model=model)
        return created.model_copy(
            update={"action": "replaced", "previousModelArn": moved.previousModelArn, "replacedDeploymentArn": stable}
        )
    return moved


def check_serving(*, bedrock: Any, deployment: Deployment, checked_at: str | None = None) -> Deployment:
    """``GetCustomModelDeployment``: the status of the creation or of the move to ``deployment.modelArn``."""
    if deployment.action != "updated":
        return imports.check_deployment(bedrock=bedrock, deployment=deployment, checked_at=checked_at)
    response = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment.arn)
    details = response.get("updateDetails") or {}
    if details.get("modelArn") == deployment.modelArn:
        status = _UPDATE_STATUS.get(str(details.get("updateStatus")), "Updating")
    elif response.get("modelArn") == deployment.modelArn:
        status = str(response.get("status", "Updating"))
    else:
        status = "Updating"
    return deployment.model_copy(
        update=imports.checked(
            {**response, "status": status}, "status", deployment.poll, imports.MAX_DEPLOYMENT_POLLS, checked_at
        )
    )


def _served(champion: Champion) -> ServedModel:
    return ServedModel(
        runId=champion.runId,
        modelArn=champion.modelArn,
        modelName=champion.modelName,
        checkpoint=champion.checkpoint,
        metrics=champion.metrics,
        deployedAt=champion.deployedAt,
        runRecord=champion.runRecord,
    )


def crown(new: Champion, previous: Champion | None) -> Champion:
    """The champion record after ``new`` was deployed: the previous champion leads its history."""
    if previous is None:
        return new
    history = [_served(previous), *previous.history] if previous.modelArn != new.modelArn else previous.history
    return new.model_copy(update={"history": history})


def retire(
    *, bedrock: Any, champion: Champion, retention: int = DEFAULT_RETENTION, replaced_deployment: str | None = None
) -> tuple[Champion, list[str]]:
    """Delete the replaced deployment and the models beyond the ``retention`` newest; the record and what failed.

    A model another deployment still serves (Bedrock refuses with ``ConflictException``) or that is
    already gone counts as retired only when it is gone; every other error is returned, not raised.
    """
    problems: list[str] = []
    if replaced_deployment:
        try:
            bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=replaced_deployment)
        except Exception as error:  # noqa: BLE001 - reported; the run is recorded anyway
            if error_code(error) != "ResourceNotFoundException":
                problems.append(f"deployment {replaced_deployment}: {error}")
    keep = max(retention, 1) - 1  # the champion's model is one of the kept ones
    history: list[ServedModel] = []
    for index, served in enumerate(champion.history):
        if index < keep or served.deleted or not served.modelArn or served.modelArn == champion.modelArn:
            history.append(served)
            continue
        try:
            bedrock.delete_custom_model(modelIdentifier=served.modelArn)
        except Exception as error:  # noqa: BLE001 - reported; the run is recorded anyway
            if error_code(error) != "ResourceNotFoundException":
                problems.append(f"model {served.modelArn} of run {served.runId}: {error}")
                history.append(served)
                continue
        history.append(served.model_copy(update={"deleted": True}))
    return champion.model_copy(update={"history": history}), problems


def rollback(*, bedrock: Any, champion: Champion) -> Champion:
    """Move the deployment back to the newest earlier model that exists; the new champion record."""
    if not champion.deploymentArn:
        raise NothingToRollBackTo(f"the champion record of run {champion.runId} names no deployment")
    target = next((s for s in champion.history if s.modelArn and not s.deleted), None)
    if target is None:
        raise NothingToRollBackTo(
            f"no earlier model of pipeline {champion.pipeline} is kept (history: "
            f"{', '.join(s.runId for s in champion.history) or 'empty'}); nothing to roll back to"
        )
    bedrock.update_custom_model_deployment(
        customModelDeploymentIdentifier=champion.deploymentArn, modelArn=str(target.modelArn)
    )
    rest = [s for s in champion.history if s is not target]
    return champion.model_copy(
        update={
            "runId": target.runId,
            "modelArn": target.modelArn,
            "modelName": target.modelName,
            "checkpoint": target.checkpoint,
            "metrics": target.metrics,
            "deployedAt": target.deployedAt,
            "runRecord": target.runRecord,
            "history": [_served(champion), *rest],
        }
    )
