"""The stable deployment: created once, moved to each new model, rolled back, old models retired.

The calls go through a real boto3 client (requests checked against the botocore service model)
to the rehearsal's Bedrock simulator, on a simulated clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.pipeline import serving
from lambdas.pipeline.schema import Champion, Deployment, ImportedModel, Plan
from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.faults import Durations
from tests.unit.pipeline import samples

DEPLOY_S = Durations().deploy * 60
IMPORT_S = Durations().import_ * 60


def _plan(run: str) -> Plan:
    plan = samples.plan()
    return plan.model_copy(update={"runId": run})


def _model(simulator: BedrockSimulator, client: Any, run: str) -> ImportedModel:
    checkpoint = f"s3://customer-escrow-{samples.ACCOUNT}-smtj-x/nova-{run}-rft-a1/checkpoint/"
    simulator.checkpoints[checkpoint] = "rft"
    name = f"nova-{run}"
    arn = client.create_custom_model(
        modelName=name, roleArn=samples.IMPORT_ROLE_ARN, modelSourceConfig={"s3DataSource": {"s3Uri": checkpoint}}
    )["modelArn"]
    clock.advance(IMPORT_S)
    return ImportedModel(arn=arn, name=name, checkpoint=checkpoint, status="Active")


def _serve(
    simulator: BedrockSimulator, client: Any, run: str, champion: Champion | None
) -> tuple[Deployment, Champion]:
    model = _model(simulator, client, run)
    started = serving.start_serving(bedrock=client, plan=_plan(run), model=model, champion=champion)
    done = samples.until_active(client, started)
    return done, samples.crowned(run, done, champion, modelName=model.name, metrics={"f1_score": 0.5})


def test_the_first_run_creates_the_deployment_and_later_runs_move_it_to_their_model(
    account: tuple[BedrockSimulator, Any],
) -> None:
    simulator, client = account
    first, champion = _serve(simulator, client, "run-1", None)
    assert (first.action, first.status) == ("created", "Active")

    second, champion = _serve(simulator, client, "run-2", champion)

    assert (second.action, second.status, second.arn) == ("updated", "Active", first.arn)
    assert second.previousModelArn == first.modelArn
    served = client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)
    assert served["modelArn"] == second.modelArn != first.modelArn
    assert served["updateDetails"]["updateStatus"] == "UpdateCompleted"
    assert len(simulator.deployments) == 1
    assert [s.runId for s in champion.history] == ["run-1"]


def test_an_update_is_not_active_until_bedrock_reports_it_completed(account: tuple[BedrockSimulator, Any]) -> None:
    simulator, client = account
    _, champion = _serve(simulator, client, "run-1", None)
    model = _model(simulator, client, "run-2")
    moving = serving.start_serving(bedrock=client, plan=_plan("run-2"), model=model, champion=champion)

    checked = serving.check_serving(bedrock=client, deployment=moving)

    assert checked.status == "Updating"  # the deployment itself stays Active, serving the old model meanwhile
    assert client.get_custom_model_deployment(customModelDeploymentIdentifier=moving.arn)["status"] == "Active"
    # A retried invocation does not move the deployment a second time
    again = serving.start_serving(bedrock=client, plan=_plan("run-2"), model=model, champion=champion)
    assert again.arn == moving.arn and [op for op, _ in simulator.calls].count("UpdateCustomModelDeployment") == 1


def test_a_refused_update_falls_back_to_a_new_deployment_and_retires_the_old_one(
    account: tuple[BedrockSimulator, Any],
) -> None:
    simulator, client = account
    first, champion = _serve(simulator, client, "run-1", None)
    second_model, third_model = _model(simulator, client, "run-2"), _model(simulator, client, "run-3")
    busy = serving.start_serving(bedrock=client, plan=_plan("run-2"), model=second_model, champion=champion)
    assert busy.action == "updated"

    # The deployment is still moving to run-2's model: Bedrock refuses another update (ValidationException)
    third = serving.start_serving(bedrock=client, plan=_plan("run-3"), model=third_model, champion=champion)

    assert (third.action, third.replacedDeploymentArn) == ("replaced", first.arn)
    assert third.arn != first.arn
    third = samples.until_active(client, third)
    new = samples.crowned("run-3", third, champion, modelName=third_model.name)
    _, problems = serving.retire(bedrock=client, champion=new, replaced_deployments=[str(third.replacedDeploymentArn)])
    assert problems == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)


def test_models_beyond_the_retention_are_deleted_and_marked_in_the_history(
    account: tuple[BedrockSimulator, Any],
) -> None:
    simulator, client = account
    champion = None
    for run in ("run-1", "run-2", "run-3"):
        _, champion = _serve(simulator, client, run, champion)
    assert champion is not None and [s.runId for s in champion.history] == ["run-2", "run-1"]

    retired, problems = serving.retire(bedrock=client, champion=champion, retention=2)

    assert problems == []
    assert [(s.runId, s.deleted) for s in retired.history] == [("run-2", False), ("run-1", True)]
    live = {m["modelName"] for m in client.list_custom_models()["modelSummaries"]}
    assert live == {"nova-run-2", "nova-run-3"}


def test_a_model_a_deployment_still_serves_is_not_deleted_and_the_problem_is_reported(
    account: tuple[BedrockSimulator, Any],
) -> None:
    simulator, client = account
    _, champion = _serve(simulator, client, "run-1", None)
    _, champion = _serve(simulator, client, "run-2", champion)
    other = client.create_custom_model_deployment(modelDeploymentName="by-hand", modelArn=champion.history[0].modelArn)

    retired, problems = serving.retire(bedrock=client, champion=champion, retention=1)

    assert len(problems) == 1 and "ConflictException" in problems[0] and other["customModelDeploymentArn"]
    assert retired.history[0].deleted is False


def test_rollback_moves_the_same_deployment_back_to_the_previous_model(account: tuple[BedrockSimulator, Any]) -> None:
    simulator, client = account
    first, champion = _serve(simulator, client, "run-1", None)
    second, champion = _serve(simulator, client, "run-2", champion)

    rolled = serving.rollback(bedrock=client, champion=champion)
    clock.advance(DEPLOY_S)

    assert (rolled.runId, rolled.modelArn, rolled.deploymentArn) == ("run-1", first.modelArn, first.arn)
    assert [s.runId for s in rolled.history] == ["run-2"]
    served = client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)
    assert served["modelArn"] == first.modelArn
    # A second rollback undoes the first
    assert serving.rollback(bedrock=client, champion=rolled).modelArn == second.modelArn


def test_rollback_names_the_problem_when_no_earlier_model_is_kept(account: tuple[BedrockSimulator, Any]) -> None:
    simulator, client = account
    _, champion = _serve(simulator, client, "run-1", None)

    with pytest.raises(serving.NothingToRollBackTo, match="no earlier model of pipeline nova is kept"):
        serving.rollback(bedrock=client, champion=champion)


def _three_runs(account: tuple[BedrockSimulator, Any]) -> tuple[Deployment, Champion]:
    """Runs 1 to 3 served one after another: the first deployment and the last champion record."""
    simulator, client = account
    first, champion = _serve(simulator, client, "run-1", None)
    for run in ("run-2", "run-3"):
        _, champion = _serve(simulator, client, run, champion)
    return first, champion


def test_rollback_to_a_named_run_skips_newer_models_and_refuses_a_deleted_one(
    account: tuple[BedrockSimulator, Any],
) -> None:
    client = account[1]
    first, champion = _three_runs(account)

    rolled = serving.rollback(bedrock=client, champion=champion, to_run="run-1")
    clock.advance(DEPLOY_S)

    assert (rolled.runId, rolled.modelArn) == ("run-1", first.modelArn)
    assert [s.runId for s in rolled.history] == ["run-3", "run-2"]
    assert client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)["modelArn"] == first.modelArn
    retired, _ = serving.retire(bedrock=client, champion=rolled, retention=2)
    with pytest.raises(serving.NothingToRollBackTo, match=r"run run-2's model is not .* run-2 \(deleted\)"):
        serving.rollback(bedrock=client, champion=retired, to_run="run-2")


def test_retire_lists_what_it_deletes_and_never_deletes_the_champions_deployment(
    account: tuple[BedrockSimulator, Any],
) -> None:
    client = account[1]
    first, champion = _three_runs(account)

    assert [s.runId for s in serving.retirable(champion, retention=1)] == ["run-2", "run-1"]
    assert [s.runId for s in serving.retirable(champion, retention=3)] == []
    retired, problems = serving.retire(
        bedrock=client, champion=champion, retention=1, replaced_deployments=[str(champion.deploymentArn)]
    )

    assert problems == [] and serving.retirable(retired, retention=1) == []
    assert client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)["status"] == "Active"
