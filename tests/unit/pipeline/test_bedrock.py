"""Import and deploy in Bedrock: idempotent creates, polling with backoff, clear failures."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from lambdas.pipeline import bedrock
from lambdas.pipeline.schema import ImportedModel, Poll
from tests.unit.pipeline import samples

MODEL_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/abcdef123456"
DEPLOYMENT_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456"


class Conflict(Exception):
    response = {"Error": {"Code": "ConflictException"}}


class NotFound(Exception):
    response = {"Error": {"Code": "ResourceNotFoundException"}}


class FakeBedrock:
    """Idempotent by clientRequestToken, like the service."""

    def __init__(self, statuses: list[str] | None = None) -> None:
        self.creates: list[dict] = []
        self.tokens: dict[str, str] = {}
        self.statuses = list(statuses or ["Creating", "Active"])
        self.names: set[str] = set()
        self.model_tags: list[dict] = []  # tags of the model named like this run's (GetCustomModel has no source)
        self.deployed_model_arn = MODEL_ARN  # the model of the deployment named like this run's
        self.deleted: list[str] = []

    def create_custom_model(self, **request: Any) -> dict:
        self.creates.append(request)
        token = request["clientRequestToken"]
        if token not in self.tokens:
            if request["modelName"] in self.names:
                raise Conflict()
            self.tokens[token] = MODEL_ARN
            self.names.add(request["modelName"])
            self.model_tags = request["modelTags"]
        return {"modelArn": self.tokens[token]}

    def list_tags_for_resource(self, resourceARN: str) -> dict:
        return {"tags": self.model_tags}

    def get_custom_model(self, modelIdentifier: str) -> dict:
        status = self.statuses.pop(0) if self.statuses else "Active"
        response = {"modelArn": MODEL_ARN, "modelStatus": status}
        if status == "Failed":
            response["failureMessage"] = "checkpoint format not supported"
        return response

    def create_custom_model_deployment(self, **request: Any) -> dict:
        self.creates.append(request)
        if request["modelDeploymentName"] in self.names:
            raise Conflict()
        return {"customModelDeploymentArn": DEPLOYMENT_ARN}

    def get_custom_model_deployment(self, customModelDeploymentIdentifier: str) -> dict:
        status = self.statuses.pop(0) if self.statuses else "Active"
        return {"customModelDeploymentArn": DEPLOYMENT_ARN, "status": status, "modelArn": self.deployed_model_arn}

    def delete_custom_model(self, modelIdentifier: str) -> dict:
        if modelIdentifier not in self.tokens.values():
            raise NotFound()
        self.deleted.append(modelIdentifier)
        self.tokens = {t: arn for t, arn in self.tokens.items() if arn != modelIdentifier}
        return {}


def _import(fake: FakeBedrock, rft: bool = True) -> ImportedModel:
    return bedrock.start_import(
        bedrock=fake,
        plan=samples.plan(),
        stages=samples.stages_after_training(rft=rft),
        role_arn=samples.IMPORT_ROLE_ARN,
        kms_key_arn=samples.KMS_KEY_ARN,
    )


def _poll(model: ImportedModel) -> Poll:
    """The poll state of a model that has been checked at least once."""
    assert model.poll is not None
    return model.poll


def test_the_rft_checkpoint_is_imported_with_the_import_role_the_project_key_tags_and_a_run_token() -> None:
    fake = FakeBedrock()
    model = _import(fake)
    (request,) = fake.creates
    assert request["modelSourceConfig"] == {"s3DataSource": {"s3Uri": samples.RFT_CHECKPOINT}}
    assert request["roleArn"] == samples.IMPORT_ROLE_ARN
    assert request["modelKmsKeyArn"] == samples.KMS_KEY_ARN
    assert (
        request["modelName"] == "nova-run-1-0b9d6cbe" and request["clientRequestToken"] == "nova-run-1-0b9d6cbe-import"
    )
    assert {"key": "nova:run-id", "value": "run-1-0b9d6cbe"} in request["modelTags"]
    assert model.to_json() == {
        "arn": MODEL_ARN,
        "name": "nova-run-1-0b9d6cbe",
        "checkpoint": samples.RFT_CHECKPOINT,
        "status": "Creating",
        "failureMessage": None,
        "poll": {"count": 0, "waitSeconds": 60, "exhausted": False},
        "startedAt": None,
        "endedAt": None,
        "deletedAt": None,
        "origin": "imported",
        "stage": None,
        "provisionalDeploymentArn": None,
        "note": None,
    }


def test_a_check_that_finds_the_model_active_or_failed_records_when() -> None:
    fake = FakeBedrock(statuses=["Creating", "Active"])
    model = _import(fake)
    creating = bedrock.check_import(bedrock=fake, model=model, checked_at="2026-01-01T00:07:00Z")
    active = bedrock.check_import(bedrock=fake, model=creating, checked_at="2026-01-01T00:15:00Z")
    assert (creating.status, creating.endedAt) == ("Creating", None)
    assert (active.status, active.endedAt) == ("Active", "2026-01-01T00:15:00Z")


def test_without_rft_the_sft_checkpoint_is_imported() -> None:
    assert _import(FakeBedrock(), rft=False).checkpoint == samples.SFT_CHECKPOINT


def test_a_retried_import_does_not_import_twice() -> None:
    fake = FakeBedrock()
    first, second = _import(fake), _import(fake)
    assert first.arn == second.arn and len(fake.tokens) == 1


def test_a_name_conflict_adopts_the_model_of_this_run() -> None:
    fake = FakeBedrock()
    fake.names.add("nova-run-1-0b9d6cbe")
    fake.model_tags = [{"key": bedrock.CHECKPOINT_TAG, "value": samples.RFT_CHECKPOINT}]
    assert _import(fake).arn == MODEL_ARN


def test_the_import_tags_the_model_with_its_checkpoint() -> None:
    fake = FakeBedrock()
    _import(fake)
    assert {"key": bedrock.CHECKPOINT_TAG, "value": samples.RFT_CHECKPOINT} in fake.creates[0]["modelTags"]


def test_a_source_uri_returned_by_get_custom_model_is_compared_first() -> None:
    class WithSource(FakeBedrock):
        def get_custom_model(self, modelIdentifier: str) -> dict:
            return {
                **super().get_custom_model(modelIdentifier),
                "modelSourceConfig": {"s3DataSource": {"s3Uri": samples.RFT_CHECKPOINT}},
            }

    fake = WithSource()
    fake.names.add("nova-run-1-0b9d6cbe")
    assert _import(fake).arn == MODEL_ARN


@pytest.mark.parametrize("tags", [[{"key": bedrock.CHECKPOINT_TAG, "value": samples.SFT_CHECKPOINT}], []])
def test_a_name_conflict_with_a_model_of_another_checkpoint_is_not_reused(tags: list[dict]) -> None:
    fake = FakeBedrock()
    fake.names.add("nova-run-1-0b9d6cbe")
    fake.model_tags = tags
    with pytest.raises(bedrock.NameConflictError) as caught:
        _import(fake)
    message = str(caught.value)
    assert "nova-run-1-0b9d6cbe" in message and MODEL_ARN in message and samples.RFT_CHECKPOINT in message


def test_a_deployment_name_conflict_is_reused_only_for_the_same_model() -> None:
    fake = FakeBedrock()
    fake.names.add("nova-run-1-0b9d6cbe-od")
    model = ImportedModel(arn=MODEL_ARN, name="nova-run-1-0b9d6cbe", checkpoint=samples.RFT_CHECKPOINT, status="Active")
    assert bedrock.start_deployment(bedrock=fake, plan=samples.plan(), model=model).arn == DEPLOYMENT_ARN
    fake.deployed_model_arn = MODEL_ARN.replace("abcdef123456", "other0000000")
    with pytest.raises(bedrock.NameConflictError) as caught:
        bedrock.start_deployment(bedrock=fake, plan=samples.plan(), model=model)
    assert DEPLOYMENT_ARN in str(caught.value) and fake.deployed_model_arn in str(caught.value)


def test_polling_backs_off_and_reports_the_status() -> None:
    fake = FakeBedrock(statuses=["Creating", "Creating", "Creating", "Creating", "Creating", "Active"])
    model = _import(fake)
    waits = []
    while model.status != "Active":
        model = bedrock.check_import(bedrock=fake, model=model)
        waits.append(_poll(model).waitSeconds)
    assert waits == [120, 240, 480, 600, 600, 600]
    assert _poll(model).count == 6 and not _poll(model).exhausted


def test_a_failed_import_carries_the_failure_message() -> None:
    fake = FakeBedrock(statuses=["Failed"])
    model = bedrock.check_import(bedrock=fake, model=_import(fake))
    assert model.status == "Failed" and model.failureMessage == "checkpoint format not supported"


def test_polls_are_exhausted_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock, "MAX_IMPORT_POLLS", 2)
    fake = FakeBedrock(statuses=["Creating"] * 5)
    model = _import(fake)
    model = bedrock.check_import(bedrock=fake, model=model)
    assert not _poll(model).exhausted
    model = bedrock.check_import(bedrock=fake, model=model)
    assert _poll(model).exhausted


def test_the_deployment_is_created_for_the_imported_model_with_its_own_token() -> None:
    fake = FakeBedrock()
    deployment = bedrock.start_deployment(
        bedrock=fake,
        plan=samples.plan(),
        model=ImportedModel(
            arn=MODEL_ARN, name="nova-run-1-0b9d6cbe", checkpoint=samples.RFT_CHECKPOINT, status="Active"
        ),
    )
    (request,) = fake.creates
    assert request["modelArn"] == MODEL_ARN and request["modelDeploymentName"] == "nova-run-1-0b9d6cbe-od"
    assert request["clientRequestToken"] == "nova-run-1-0b9d6cbe-deploy"
    assert deployment.arn == DEPLOYMENT_ARN and deployment.modelArn == MODEL_ARN
    checked = bedrock.check_deployment(bedrock=FakeBedrock(statuses=["Active"]), deployment=deployment)
    assert checked.status == "Active" and checked.failureMessage is None


def test_an_old_boto3_is_refused_clearly_and_the_bundled_one_has_every_operation() -> None:
    class OldClient:
        def get_custom_model(self) -> None: ...

    with pytest.raises(
        bedrock.BedrockClientTooOld, match=r"boto3 1.28.0 has no bedrock create_custom_model.*>= 1.39.7"
    ):
        bedrock.require_operations(OldClient(), "1.28.0")
    bedrock.require_operations(boto3.client("bedrock", region_name="us-east-1"), boto3.__version__)


def test_a_model_the_run_does_not_deploy_is_deleted_once() -> None:
    fake = FakeBedrock()
    model = _import(fake)
    deleted = bedrock.delete_model(bedrock=fake, model=model, deleted_at="2026-01-01T03:00:00Z")
    assert fake.deleted == [MODEL_ARN] and deleted.status == "Deleted" and deleted.deletedAt == "2026-01-01T03:00:00Z"
    # a retried deletion finds the model gone: still deleted, no error
    assert bedrock.delete_model(bedrock=fake, model=model).status == "Deleted" and fake.deleted == [MODEL_ARN]


def test_a_deletion_the_service_refuses_is_raised() -> None:
    class Refusing(FakeBedrock):
        def delete_custom_model(self, modelIdentifier: str) -> dict:
            raise Conflict()

    fake = Refusing()
    with pytest.raises(Conflict):
        bedrock.delete_model(bedrock=fake, model=_import(fake))


def test_when_the_gate_prefers_sft_its_checkpoint_is_a_second_import_with_its_own_name_and_token() -> None:
    fake = FakeBedrock()
    rft = _import(fake)
    bedrock.delete_model(bedrock=fake, model=rft)
    sft = bedrock.start_import(
        bedrock=fake,
        plan=samples.plan(),
        stages=samples.stages_after_training(),
        role_arn=samples.IMPORT_ROLE_ARN,
        kms_key_arn=samples.KMS_KEY_ARN,
        candidate="sft",
    )
    first, second = fake.creates
    assert sft.checkpoint == samples.stages_after_training().sft.checkpoint != rft.checkpoint
    assert second["modelName"] == first["modelName"] + "-sft"
    assert second["clientRequestToken"] != first["clientRequestToken"]
