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
- On the Bedrock road the candidate's evaluation already deployed the model (its provisional
  deployment, ``provisional``): where the first run would create the deployment, or a refused
  update would create a new one, that deployment is adopted instead (``action: adopted``, or
  ``replaced`` by it); after an update it is left to "Record run", which deletes it
  (:func:`lambdas.pipeline.bedrock.clean_up_provisional`).
- :func:`check_serving` ("Check deployment"): ``GetCustomModelDeployment``; an update is done
  when its ``updateDetails`` report ``UpdateCompleted`` for this model.
- :func:`crown` (the "Record run" state): the new champion record, with the models served
  before it in ``history`` (newest first).
- :func:`retire`: deletes the replaced deployments (never the champion's) and every custom model
  beyond the ``retention`` newest (the champion's counts as one; :func:`retirable` lists them),
  marking them ``deleted`` in the history.
- :func:`rollback`: moves the deployment back to the newest model of the history that still
  exists, or to a given earlier run's; the model it served goes to the front of the history, so
  a second rollback undoes the first. The caller writes the returned champion record
  (:func:`lambdas.pipeline.record.write_champion`) and waits for ``GetCustomModelDeployment`` as
  :func:`check_serving` does (:func:`rollback_deployment`).

Every function takes a boto3 ``bedrock`` client and returns records (:mod:`lambdas.pipeline.schema`);
none reads or writes S3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdas.common.aws_errors import error_code
from lambdas.pipeline import bedrock as imports
from lambdas.pipeline.schema import Champion, Deployment, ImportedModel, Plan, Poll, ServedModel

DEFAULT_RETENTION = 2
# The update's status (GetCustomModelDeployment updateDetails.updateStatus) -> the deployment status the
# state machine waits on.
_UPDATE_STATUS = {"Updating": "Updating", "UpdateCompleted": "Active", "UpdateFailed": "Failed"}


class NothingToRollBackTo(RuntimeError):
    """The champion record names no earlier model that still exists."""


def existing_deployment(bedrock: Any, arn: str) -> dict[str, Any] | None:
    try:
        response: dict[str, Any] = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    return response


def adopt_provisional(bedrock: Any, model: ImportedModel, provisional: str | None) -> Deployment | None:
    """The provisional deployment as the pipeline's (``action: adopted``), checked at once (a wait of 0); None
    when there is none, it is gone, it failed or it deploys another model."""
    found = existing_deployment(bedrock, provisional) if provisional else None
    if found is None or found.get("modelArn") != model.arn or found.get("status") == "Failed":
        return None
    return Deployment(
        arn=str(found["customModelDeploymentArn"]),
        name=str(found.get("modelDeploymentName") or provisional),
        modelArn=model.arn,
        status=str(found.get("status") or "Creating"),
        poll=Poll(count=0, waitSeconds=0, exhausted=False),
        action="adopted",
    )


def start_serving(
    *, bedrock: Any, plan: Plan, model: ImportedModel, champion: Champion | None, provisional: str | None = None
) -> Deployment:
    """Serve ``model``: create the pipeline's deployment (or adopt ``provisional``, the deployment the model's
    evaluation created on the Bedrock road), or move the champion's deployment to it."""
    stable = champion.deploymentArn if champion else None
    existing = existing_deployment(bedrock, stable) if stable else None
    if stable is None or existing is None:
        # The first run, or the deployment was deleted outside the pipeline: a new stable deployment.
        adopted = adopt_provisional(bedrock, model, provisional)
        return adopted or imports.start_deployment(bedrock=bedrock, plan=plan, model=model)
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
        adopted = adopt_provisional(bedrock, model, provisional)
        created = adopted or imports.start_deployment(bedrock=bedrock, plan=plan, model=model)
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


def retirable(champion: Champion, retention: int = DEFAULT_RETENTION) -> list[ServedModel]:
    """The models of the history :func:`retire` deletes: beyond the ``retention`` newest (the champion's counts
    as one), not deleted yet, and not the model the deployment serves."""
    keep = max(retention, 1) - 1  # the champion's model is one of the kept ones
    return [
        served
        for index, served in enumerate(champion.history)
        if index >= keep and not served.deleted and served.modelArn and served.modelArn != champion.modelArn
    ]


def retire(
    *,
    bedrock: Any,
    champion: Champion,
    retention: int = DEFAULT_RETENTION,
    replaced_deployments: Sequence[str] = (),
) -> tuple[Champion, list[str]]:
    """Delete the replaced deployments and the models beyond the ``retention`` newest; the record and what failed.

    The champion's deployment is never deleted. A model another deployment still serves (Bedrock refuses
    with ``ConflictException``) or that is already gone counts as retired only when it is gone; every other
    error is returned, not raised.
    """
    problems: list[str] = []
    for replaced in replaced_deployments:
        if replaced == champion.deploymentArn:
            continue
        try:
            bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=replaced)
        except Exception as error:  # noqa: BLE001 - reported; the run is recorded anyway
            if error_code(error) != "ResourceNotFoundException":
                problems.append(f"deployment {replaced}: {error}")
    doomed = {id(served) for served in retirable(champion, retention)}
    history: list[ServedModel] = []
    for served in champion.history:
        if id(served) not in doomed:
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


def rollback(*, bedrock: Any, champion: Champion, to_run: str | None = None) -> Champion:
    """Move the deployment back to an earlier model that exists: run ``to_run``'s, or else the newest of the
    history; the new champion record."""
    if not champion.deploymentArn:
        raise NothingToRollBackTo(f"the champion record of run {champion.runId} names no deployment")
    kept = [s for s in champion.history if s.modelArn and not s.deleted]
    if to_run is not None:
        if to_run == champion.runId:
            raise NothingToRollBackTo(f"run {to_run} is the champion: its model is the one served")
        kept = [s for s in kept if s.runId == to_run]
    if not kept:
        what = f"run {to_run}'s model is not" if to_run is not None else "no earlier model"
        raise NothingToRollBackTo(
            f"{what} of pipeline {champion.pipeline} is kept (history: "
            + (", ".join(s.runId + (" (deleted)" if s.deleted else "") for s in champion.history) or "empty")
            + "); nothing to roll back to"
        )
    target = kept[0]
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


def rollback_deployment(champion: Champion, previous_model: str | None) -> Deployment:
    """The deployment a rollback started, for :func:`check_serving` to poll until the move is done."""
    return Deployment(
        arn=str(champion.deploymentArn),
        name=champion.deploymentName or str(champion.deploymentArn),
        modelArn=str(champion.modelArn),
        status="Updating",
        poll=imports.first_poll("Updating", imports.MAX_DEPLOYMENT_POLLS),
        action="updated",
        previousModelArn=previous_model,
    )
