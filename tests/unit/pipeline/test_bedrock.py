"""Import and deploy in Bedrock: idempotent creates, polling with backoff, clear failures."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from lambdas.pipeline import bedrock
from tests.unit.pipeline import samples

MODEL_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/abcdef123456"
DEPLOYMENT_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456"


class Conflict(Exception):
    response = {"Error": {"Code": "ConflictException"}}


class FakeBedrock:
    """Idempotent by clientRequestToken, like the service."""

    def __init__(self, statuses: list[str] | None = None) -> None:
        self.creates: list[dict] = []
        self.tokens: dict[str, str] = {}
        self.statuses = list(statuses or ["Creating", "Active"])
        self.names: set[str] = set()

    def create_custom_model(self, **request: Any) -> dict:
        self.creates.append(request)
        token = request["clientRequestToken"]
        if token not in self.tokens:
            if request["modelName"] in self.names:
                raise Conflict()
            self.tokens[token] = MODEL_ARN
            self.names.add(request["modelName"])
        return {"modelArn": self.tokens[token]}

    def get_custom_model(self, modelIdentifier: str) -> dict:
        status = self.statuses.pop(0) if self.statuses else "Active"
        response = {"modelArn": MODEL_ARN, "modelStatus": status}
        if status == "Failed":
            response["failureMessage"] = "checkpoint format not supported"
        return response

    def create_custom_model_deployment(self, **request: Any) -> dict:
        self.creates.append(request)
        return {"customModelDeploymentArn": DEPLOYMENT_ARN}

    def get_custom_model_deployment(self, customModelDeploymentIdentifier: str) -> dict:
        status = self.statuses.pop(0) if self.statuses else "Active"
        return {"customModelDeploymentArn": DEPLOYMENT_ARN, "status": status}


def _import(fake: FakeBedrock, rft: bool = True) -> dict:
    return bedrock.start_import(bedrock=fake, plan=samples.plan(), stages=samples.stages_after_training(rft=rft),
                                role_arn=samples.IMPORT_ROLE_ARN)


def test_the_rft_checkpoint_is_imported_with_the_import_role_tags_and_a_run_token() -> None:
    fake = FakeBedrock()
    model = _import(fake)
    (request,) = fake.creates
    assert request["modelSourceConfig"] == {"s3DataSource": {"s3Uri": samples.RFT_CHECKPOINT}}
    assert request["roleArn"] == samples.IMPORT_ROLE_ARN
    assert request["modelName"] == "nova-run-1" and request["clientRequestToken"] == "nova-run-1-import"
    assert {"key": "nova:run-id", "value": "run-1"} in request["modelTags"]
    assert model == {"arn": MODEL_ARN, "name": "nova-run-1", "checkpoint": samples.RFT_CHECKPOINT,
                     "status": "Creating", "failureMessage": None,
                     "poll": {"count": 0, "waitSeconds": 60, "exhausted": False}}


def test_without_rft_the_sft_checkpoint_is_imported() -> None:
    assert _import(FakeBedrock(), rft=False)["checkpoint"] == samples.SFT_CHECKPOINT


def test_a_retried_import_does_not_import_twice() -> None:
    fake = FakeBedrock()
    first, second = _import(fake), _import(fake)
    assert first["arn"] == second["arn"] and len(fake.tokens) == 1


def test_a_name_conflict_adopts_the_model_of_this_run() -> None:
    fake = FakeBedrock()
    fake.names.add("nova-run-1")
    assert _import(fake)["arn"] == MODEL_ARN


def test_polling_backs_off_and_reports_the_status() -> None:
    fake = FakeBedrock(statuses=["Creating", "Creating", "Creating", "Creating", "Creating", "Active"])
    model = _import(fake)
    waits = []
    while model["status"] != "Active":
        model = bedrock.check_import(bedrock=fake, model=model)
        waits.append(model["poll"]["waitSeconds"])
    assert waits == [120, 240, 480, 600, 600, 600]
    assert model["poll"]["count"] == 6 and not model["poll"]["exhausted"]


def test_a_failed_import_carries_the_failure_message() -> None:
    fake = FakeBedrock(statuses=["Failed"])
    model = bedrock.check_import(bedrock=fake, model=_import(fake))
    assert model["status"] == "Failed" and model["failureMessage"] == "checkpoint format not supported"


def test_polls_are_exhausted_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock, "MAX_IMPORT_POLLS", 2)
    fake = FakeBedrock(statuses=["Creating"] * 5)
    model = _import(fake)
    model = bedrock.check_import(bedrock=fake, model=model)
    assert not model["poll"]["exhausted"]
    model = bedrock.check_import(bedrock=fake, model=model)
    assert model["poll"]["exhausted"]


def test_the_deployment_is_created_for_the_imported_model_with_its_own_token() -> None:
    fake = FakeBedrock()
    deployment = bedrock.start_deployment(bedrock=fake, plan=samples.plan(),
                                          model={"arn": MODEL_ARN, "name": "nova-run-1"})
    (request,) = fake.creates
    assert request["modelArn"] == MODEL_ARN and request["modelDeploymentName"] == "nova-run-1-od"
    assert request["clientRequestToken"] == "nova-run-1-deploy"
    assert deployment["arn"] == DEPLOYMENT_ARN and deployment["modelArn"] == MODEL_ARN
    checked = bedrock.check_deployment(bedrock=FakeBedrock(statuses=["Active"]), deployment=deployment)
    assert checked["status"] == "Active" and checked["failureMessage"] is None


def test_an_old_boto3_is_refused_clearly_and_the_bundled_one_has_every_operation() -> None:
    class OldClient:
        def get_custom_model(self) -> None: ...

    with pytest.raises(bedrock.BedrockClientTooOld, match=r"boto3 1.28.0 has no bedrock create_custom_model.*>= 1.39.7"):
        bedrock.require_operations(OldClient(), "1.28.0")
    bedrock.require_operations(boto3.client("bedrock", region_name="us-east-1"), boto3.__version__)
