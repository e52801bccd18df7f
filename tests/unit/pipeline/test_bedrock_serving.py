"""The Bedrock road after training: the customization job's model is adopted (not imported), kept when it is not
deployed, and the provisional deployment its evaluation created becomes the pipeline's deployment or is deleted.

The calls go through a real boto3 client (requests checked against the botocore service model) to the
rehearsal's Bedrock simulator, on a simulated clock; the customization jobs' models and the evaluations'
provisional deployments are made the way the service makes them (a model ARN of the base model's form, a
``CreateCustomModelDeployment`` of it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from lambdas.pipeline import bedrock, serving
from lambdas.pipeline.schema import Champion, Deployment, Plan, StageRecords
from offline.lambda_context import FakeLambdaContext
from offline.shapes import request_problems
from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator, SimModel
from rehearsal.simulators.faults import Durations
from tests.unit.pipeline import samples

CONTEXT = FakeLambdaContext("pipeline-test", aws_request_id="request-1")
DEPLOY_S = Durations().deploy * 60
Account = tuple[BedrockSimulator, Any]


def _plan(run: str = "run-1-0b9d6cbe") -> Plan:
    return samples.plan().model_copy(update={"runId": run, "platform": "bedrock"})


def _customized(simulator: BedrockSimulator, run: str, stage: str) -> str:
    """A custom model as a finished customization job leaves it (Active, named by the job's request)."""
    model_id = hashlib.sha256(f"{run}-{stage}".encode()).hexdigest()[:12]
    arn = f"arn:aws:bedrock:us-east-1:{samples.ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/{model_id}"
    now = clock.elapsed()
    request = {"customizationType": "FINE_TUNING" if stage == "sft" else "REINFORCEMENT_FINE_TUNING"}
    simulator.models[arn] = SimModel(arn, f"nova-{run}-{stage}", request, now, now, None, simulator.epoch)
    return arn


def _evaluated(client: Any, model_arn: str, name: str) -> str:
    """The provisional deployment an evaluation creates and waits for."""
    arn = str(
        client.create_custom_model_deployment(modelDeploymentName=name, modelArn=model_arn)["customModelDeploymentArn"]
    )
    clock.advance(DEPLOY_S)
    return arn


def _run(simulator: BedrockSimulator, client: Any, run: str, *, final_evaluated: bool = True) -> StageRecords:
    """Stage records of a run whose SFT and RFT jobs made custom models and whose evaluations deployed them."""
    sft, rft = _customized(simulator, run, "sft"), _customized(simulator, run, "rft")
    final = _evaluated(client, rft, f"{run}-final-eval") if final_evaluated else None
    return StageRecords.model_validate(
        {
            "baselineEval": {"status": "SUCCEEDED", "metrics": {"exact_match": 0.3}},
            "sft": {"status": "SUCCEEDED", "jobArn": f"{run}-sft-job", "customModelArn": sft},
            "sftEval": {"status": "SUCCEEDED", "deploymentArn": _evaluated(client, sft, f"{run}-sft-eval")},
            "rft": {"status": "SUCCEEDED", "jobArn": f"{run}-rft-job", "customModelArn": rft},
            "finalEval": {"status": "SUCCEEDED" if final else "PENDING", "deploymentArn": final},
        }
    )


def _exists(client: Any, deployment: str) -> bool:
    return serving.existing_deployment(client, deployment) is not None


def _operations(simulator: BedrockSimulator) -> list[str]:
    return [operation for operation, _ in simulator.calls]


def test_the_rft_model_is_adopted_with_the_final_evaluations_deployment_and_is_active_at_once(account: Account) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1")

    model = bedrock.adopt(bedrock=client, stages=stages)

    assert (model.arn, model.origin, model.stage, model.checkpoint) == (
        stages.rft.customModelArn,
        "customization",
        "rft",
        None,
    )
    assert model.provisionalDeploymentArn == stages.finalEval.deploymentArn
    assert (model.status, model.poll and model.poll.waitSeconds, model.name) == ("Active", 0, "nova-run-1-rft")
    checked = bedrock.check_import(bedrock=client, model=model, checked_at="2026-01-01T01:00:00Z")
    assert (checked.status, checked.endedAt) == ("Active", "2026-01-01T01:00:00Z")
    assert "CreateCustomModel" not in _operations(simulator)


def test_the_gates_sft_choice_is_adopted_with_the_sft_evaluations_deployment(account: Account) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1")

    model = bedrock.adopt(bedrock=client, stages=stages, candidate="sft")

    assert (model.arn, model.stage) == (stages.sft.customModelArn, "sft")
    assert model.provisionalDeploymentArn == stages.sftEval.deploymentArn


def test_a_stage_without_a_custom_model_is_named() -> None:
    stages = StageRecords.model_validate(
        {name: {"status": "SKIPPED"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    )
    with pytest.raises(bedrock.MissingCustomModelError, match=r"stages\.rft\.customModelArn and stages\.sft"):
        bedrock.adopt(bedrock=None, stages=stages)
    with pytest.raises(bedrock.MissingCustomModelError, match=r"stages\.sft\.customModelArn is empty"):
        bedrock.adopt(
            bedrock=None,
            stages=stages.replace("rft", stages.rft.model_copy(update={"customModelArn": "m"})),
            candidate="sft",
        )


def test_a_model_not_deployed_is_kept_and_its_provisional_deployment_deleted(account: Account) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1")
    model = bedrock.adopt(bedrock=client, stages=stages)

    kept = bedrock.keep_adopted(bedrock=client, model=model, stages=stages, reason="the gate rejected the candidate")

    assert client.get_custom_model(modelIdentifier=model.arn)["modelStatus"] == "Active"
    assert not _exists(client, str(stages.finalEval.deploymentArn))
    assert (kept.status, kept.deletedAt) == ("Active", None)
    assert kept.note is not None and kept.note.startswith("not deployed (the gate rejected the candidate); kept")
    assert f"{stages.finalEval.deploymentArn} was deleted" in kept.note
    assert "DeleteCustomModel" not in _operations(simulator)
    # A retried call finds the deployment gone and says so
    again = bedrock.keep_adopted(bedrock=client, model=model, stages=stages)
    assert again.note is not None and again.note.endswith("was already deleted")


def test_the_first_run_adopts_the_provisional_deployment_as_the_pipelines(account: Account) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1")
    model = bedrock.adopt(bedrock=client, stages=stages)

    started = serving.start_serving(
        bedrock=client, plan=_plan(), model=model, champion=None, provisional=model.provisionalDeploymentArn
    )
    checked = serving.check_serving(bedrock=client, deployment=started, checked_at="t")

    assert (started.action, started.arn, started.poll and started.poll.waitSeconds) == (
        "adopted",
        stages.finalEval.deploymentArn,
        0,
    )
    assert (checked.status, checked.modelArn, checked.endedAt) == ("Active", model.arn, "t")
    assert _operations(simulator).count("CreateCustomModelDeployment") == 2  # the two evaluations
    # The record keeps it (it serves) and deletes the SFT evaluation's
    outcomes = bedrock.clean_up_provisional(
        bedrock=client, found=bedrock.provisional_deployments(stages, None), serving=checked.arn
    )
    assert [(o.stage, o.outcome) for o in outcomes] == [("sftEval", "deleted"), ("finalEval", "serving")]
    assert _exists(client, checked.arn) and not _exists(client, str(stages.sftEval.deploymentArn))


def _serve(client: Any, run: str, stages: StageRecords, champion: Champion | None) -> Deployment:
    model = bedrock.adopt(bedrock=client, stages=stages)
    current = serving.start_serving(
        bedrock=client, plan=_plan(run), model=model, champion=champion, provisional=model.provisionalDeploymentArn
    )
    return samples.until_active(client, current)


def test_a_later_run_moves_the_stable_deployment_and_its_provisional_one_is_deleted(account: Account) -> None:
    simulator, client = account
    first_stages = _run(simulator, client, "run-1")
    first = _serve(client, "run-1", first_stages, None)
    champion = samples.crowned("run-1", first, None)
    second_stages = _run(simulator, client, "run-2")

    second = _serve(client, "run-2", second_stages, champion)
    outcomes = bedrock.clean_up_provisional(
        bedrock=client, found=bedrock.provisional_deployments(second_stages, None), serving=second.arn
    )

    assert (second.action, second.status, second.arn) == ("updated", "Active", first.arn)
    served = client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)
    assert served["modelArn"] == second_stages.rft.customModelArn
    assert {o.outcome for o in outcomes} == {"deleted"}
    assert not _exists(client, str(second_stages.finalEval.deploymentArn))
    # The adopted deployment rolls back like a created one
    rolled = serving.rollback(bedrock=client, champion=samples.crowned("run-2", second, champion))
    clock.advance(DEPLOY_S)
    assert (rolled.runId, rolled.deploymentArn) == ("run-1", first.arn)
    assert client.get_custom_model_deployment(customModelDeploymentIdentifier=first.arn)["modelArn"] == (
        first_stages.rft.customModelArn
    )


def test_models_of_customization_jobs_are_retired_only_when_no_deployment_uses_them(account: Account) -> None:
    simulator, client = account
    champion = None
    runs = {}
    for run in ("run-1", "run-2", "run-3"):
        runs[run] = _run(simulator, client, run)
        deployment = _serve(client, run, runs[run], champion)
        bedrock.clean_up_provisional(
            bedrock=client, found=bedrock.provisional_deployments(runs[run], None), serving=deployment.arn
        )
        champion = samples.crowned(run, deployment, champion)
    assert champion is not None
    # A deployment made by hand still uses run-2's model
    client.create_custom_model_deployment(modelDeploymentName="by-hand", modelArn=runs["run-2"].rft.customModelArn)

    retired, problems = serving.retire(bedrock=client, champion=champion, retention=1)

    assert [(s.runId, s.deleted) for s in retired.history] == [("run-2", False), ("run-1", True)]
    assert len(problems) == 1 and "ConflictException" in problems[0]


def _final_evaluated(client: Any, early: StageRecords) -> StageRecords:
    """The stage records once the final evaluation (which ran beside the adoption) has deployed the RFT model."""
    final = _evaluated(client, str(early.rft.customModelArn), f"{early.rft.jobArn}-final-eval")
    return early.replace(
        "finalEval", early.finalEval.model_copy(update={"status": "SUCCEEDED", "deploymentArn": final})
    )


def _adopted_early(account: Account, handlers: Any) -> tuple[Any, StageRecords, dict]:
    """Run 1 through its training, and its RFT model adopted by the handler beside the final evaluation (whose
    deployment does not exist yet): the client, the stage records and the model record."""
    simulator, client = account
    early = _run(simulator, client, "run-1", final_evaluated=False)
    model = handlers.import_model({"plan": _plan().to_json(), "stages": early.to_json()}, CONTEXT)
    return client, early, dict(model)


def test_the_handlers_adopt_then_keep_a_rejected_model_and_the_record_lists_its_deployments(
    account: Account, s3: Any, handlers: Any
) -> None:
    client, early, model = _adopted_early(account, handlers)
    assert model["provisionalDeploymentArn"] is None and model["poll"]["waitSeconds"] == 0
    stages = _final_evaluated(client, early)
    reason = "the gate rejected the candidate; nothing is deployed"

    kept = handlers.delete_model(
        {"model": model, "checkedAt": "t", "stages": stages.to_json(), "reason": reason}, CONTEXT
    )
    state = {
        "input": {},
        "execution": samples.EXECUTION,
        "plan": _plan().to_json(),
        "stages": stages.to_json(),
        "gate": {"passed": False, "reasons": ["exact_match 0.3 < minScore 0.7"]},
        "model": kept,
    }
    written = handlers.record_run({"run": state, "endedAt": "t"}, CONTEXT)

    assert kept["provisionalDeploymentArn"] == stages.finalEval.deploymentArn and reason in kept["note"]
    record = json.loads(
        s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-1-0b9d6cbe/run.json")["Body"].read()
    )
    assert written["status"] == record["status"] == "GATE_REJECTED"
    assert [(d["stage"], d["outcome"]) for d in record["provisionalDeployments"]] == [
        ("sftEval", "deleted"),
        ("finalEval", "already deleted"),
    ]
    assert record["stages"]["rft"]["customModelArn"] == stages.rft.customModelArn
    assert not any(_exists(client, d["arn"]) for d in record["provisionalDeployments"])
    for arn in (stages.sft.customModelArn, stages.rft.customModelArn):
        assert client.get_custom_model(modelIdentifier=arn)["modelStatus"] == "Active"


def test_the_handlers_deploy_by_adopting_the_deployment_the_stages_name(
    account: Account, s3: Any, handlers: Any
) -> None:
    client, early, model = _adopted_early(account, handlers)
    stages = _final_evaluated(client, early)
    final = stages.finalEval.deploymentArn

    started = handlers.deploy_model({"plan": _plan().to_json(), "model": model, "stages": stages.to_json()}, CONTEXT)

    assert (started["action"], started["arn"], started["poll"]["waitSeconds"]) == ("adopted", final, 0)


def test_a_failed_run_deletes_the_deployment_its_failed_evaluation_had_reached(
    account: Account, s3: Any, handlers: Any
) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1", final_evaluated=False)
    reached = _evaluated(client, str(stages.rft.customModelArn), "final")
    job = {"stage": "finalEval", "name": "nova-run-1-final", "attempt": 2, "evaluation": {"deploymentArn": reached}}
    job["lastError"] = {"Error": "States.TaskFailed", "Cause": "Converse throttled"}
    state = {
        "input": {},
        "execution": samples.EXECUTION,
        "plan": _plan().to_json(),
        "stages": stages.to_json(),
        "stageFailure": {"stage": "finalEval", "job": job},
        "error": {"Error": "FinalEvaluationFailed", "Cause": "Converse throttled"},
    }

    handlers.record_failed_run({"run": state, "endedAt": "t"}, CONTEXT)

    record = json.loads(
        s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-1-0b9d6cbe/run.json")["Body"].read()
    )
    assert [(d["stage"], d["arn"], d["outcome"]) for d in record["provisionalDeployments"]] == [
        ("sftEval", stages.sftEval.deploymentArn, "deleted"),
        ("finalEval", reached, "deleted"),
    ]
    assert not _exists(client, reached)


def test_a_customization_jobs_model_arn_fits_the_patterns_of_the_calls_that_deploy_and_delete() -> None:
    deployment = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456"
    model = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-2-lite-v1:0:256k/abcdef123456"
    assert request_problems("bedrock", "GetCustomModel", {"modelIdentifier": model}) == []
    assert (
        request_problems("bedrock", "DeleteCustomModelDeployment", {"customModelDeploymentIdentifier": deployment})
        == []
    )
    update = {"customModelDeploymentIdentifier": deployment, "modelArn": model}
    assert request_problems("bedrock", "UpdateCustomModelDeployment", update) == []


def test_a_provisional_deployment_bedrock_will_not_delete_is_named_with_its_model(account: Account) -> None:
    simulator, client = account
    stages = _run(simulator, client, "run-1")
    model = bedrock.adopt(bedrock=client, stages=stages)

    class Refusing:
        def delete_custom_model_deployment(self, customModelDeploymentIdentifier: str) -> None:
            raise client.exceptions.ConflictException({"Error": {"Code": "ConflictException"}}, "Delete")

    with pytest.raises(bedrock.ProvisionalDeploymentError, match=f"could not delete {model.provisionalDeploymentArn}"):
        bedrock.keep_adopted(bedrock=Refusing(), model=model)
    outcomes = bedrock.clean_up_provisional(bedrock=Refusing(), found=[("finalEval", "arn:d")], serving=None)
    assert [(o.outcome, "ConflictException" in str(o.detail)) for o in outcomes] == [("not deleted", True)]
