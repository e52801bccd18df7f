"""novactl's AWS commands on moto (S3, CloudFormation, Step Functions) and botocore's Stubber (Bedrock
deployment calls, execution history), so every request is checked against botocore's service models."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.pipeline import approval, record, serving
from lambdas.pipeline.schema import (
    Champion,
    CollectedMetrics,
    Deployment,
    ImportedModel,
    MetricsTable,
    ProvisionalDeployment,
    RunRecord,
)
from novactl import aws
from novactl.cli import EXIT_AWS, EXIT_OK, EXIT_PROBLEMS, main
from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.faults import Durations, Faults
from rehearsal.simulators.routing import routed
from tests.unit.pipeline import samples
from tests.unit.report.samples import SUCCEEDED_RUN, bedrock_run, preflight_with_dataset_notes

REGION = "us-east-1"
STACK = "NovaCustomization"
DEPLOYMENT = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123def456"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stackoverflow"
DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FUNCTIONS = ("PipelineDeployModelFunction1A2B3C", "SageMakerGradersClassification9F8E")


def _model(run: str) -> str:
    return f"arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/{run}"


class Cloud:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.bedrock = boto3.client("bedrock", region_name=REGION)
        self.data, self.artifacts = "data-bucket", "artifacts-bucket"
        for bucket in (self.data, self.artifacts):
            self.s3.create_bucket(Bucket=bucket)
        role = "arn:aws:iam::123456789012:role/sfn"
        self.machine = self.sfn.create_state_machine(name="pipeline", definition=json.dumps(DEFINITION), roleArn=role)[
            "stateMachineArn"
        ]
        self.stack_exists = True
        self.lambda_retention: str | None = None
        self.quotas = boto3.client("service-quotas", region_name=REGION)
        self.outputs = {
            "DataBucketName": self.data,
            "ArtifactsBucketName": self.artifacts,
            "StateMachineArn": self.machine,
        }

    def cloudformation(self) -> Any:
        """DescribeStacks answers with the stack's outputs for the stack's name, and the error CloudFormation gives
        for any other name (moto's CloudFormation needs extras the project does not install)."""
        client = boto3.client("cloudformation", region_name=REGION)
        stub = Stubber(client)
        stack = {
            "StackName": STACK,
            "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()],
        }
        if self.stack_exists:
            stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
            resources = [
                {"LogicalResourceId": name, "PhysicalResourceId": f"{STACK}-{name}", "ResourceType": kind,
                 "LastUpdatedTimestamp": stack["CreationTime"], "ResourceStatus": "CREATE_COMPLETE"}
                for name, kind in (("ArtifactsBucket", "AWS::S3::Bucket"),
                                   *((f, "AWS::Lambda::Function") for f in FUNCTIONS))
            ]  # fmt: skip
            stub.add_response("list_stack_resources", {"StackResourceSummaries": resources}, {"StackName": STACK})
        else:
            stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        stub.activate()
        return client

    def functions(self) -> Any:
        """GetFunctionConfiguration of the stack's functions: a grader, then the pipeline's (``MODEL_RETENTION``
        as ``lambda_retention``, absent when None)."""
        client = boto3.client("lambda", region_name=REGION)
        stub = Stubber(client)
        pipeline = {"PIPELINE_NAME": "nova"} | (
            {"MODEL_RETENTION": self.lambda_retention} if self.lambda_retention is not None else {}
        )
        for name, variables in zip(FUNCTIONS, ({"LOG_LEVEL": "INFO"}, pipeline), strict=True):
            stub.add_response(
                "get_function_configuration",
                {"FunctionName": f"{STACK}-{name}", "Environment": {"Variables": variables}},
                {"FunctionName": f"{STACK}-{name}"},
            )
        stub.activate()
        return client

    def clients(self, service: str) -> Any:
        if service == "cloudformation":
            return self.cloudformation()
        if service == "lambda":
            return self.functions()
        if service == "sts":
            return boto3.client("sts", region_name=REGION)
        return {"s3": self.s3, "stepfunctions": self.sfn, "bedrock": self.bedrock, "service-quotas": self.quotas}[
            service
        ]

    def run(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(list(argv), out=out, clients=self.clients), out.getvalue()

    def record(self, run_id: str, started: str, exact_match: float, *, deployed: bool = True) -> RunRecord:
        record = RunRecord(
            runId=run_id,
            pipeline="nova",
            status="SUCCEEDED",
            startedAt=started,
            metrics=CollectedMetrics(
                metric="exact_match",
                candidate="rft",
                table=MetricsTable(baseline={"exact_match": 0.2}, rft={"exact_match": exact_match, "f1": 0.5}),
            ),
            model=ImportedModel(arn=_model(run_id), name=run_id, checkpoint="s3://escrow/x/", status="Active"),
        )
        if deployed:
            arn = f"{DEPLOYMENT}-{run_id}"
            deployment = Deployment(arn=arn, name=run_id, modelArn=_model(run_id), status="Active")
            record = record.model_copy(update={"deployment": deployment})
        self.s3.put_object(Bucket=self.artifacts, Key=f"runs/{run_id}/run.json", Body=json.dumps(record.to_json()))
        return record

    def read(self, key: str, *, bucket: str | None = None) -> Any:
        return json.loads(self.s3.get_object(Bucket=bucket or self.artifacts, Key=key)["Body"].read())


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield Cloud()


def test_start_uploads_the_datasets_and_starts_an_execution_with_the_stack_bucket(cloud: Cloud, tmp_path: Path) -> None:
    for name in ("sft", "rft", "eval"):
        (tmp_path / f"{name}.jsonl").write_text(f'{{"dataset": "{name}"}}\n')
    run_input = {"datasets": {n: f"s3://<data bucket>/datasets/so/{n}.jsonl" for n in ("sft", "rft", "eval")}}
    (tmp_path / "run.json").write_text(json.dumps(run_input))
    code, text = cloud.run("start", str(tmp_path / "run.json"), "--data", str(tmp_path), "--name", "so-1")
    assert code == EXIT_OK, text
    body = cloud.s3.get_object(Bucket=cloud.data, Key="datasets/so/rft.jsonl")["Body"].read()
    assert body == b'{"dataset": "rft"}\n'
    (execution,) = cloud.sfn.list_executions(stateMachineArn=cloud.machine)["executions"]
    assert execution["name"] == "so-1"
    started = json.loads(cloud.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["datasets"]["eval"] == f"s3://{cloud.data}/datasets/so/eval.jsonl"


def test_start_names_a_dataset_file_missing_from_the_folder(cloud: Cloud, tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"datasets": {"eval": "s3://b/datasets/eval.jsonl"}}))
    code, _ = cloud.run("start", str(tmp_path / "run.json"), "--data", str(tmp_path))
    assert code == 2
    assert cloud.sfn.list_executions(stateMachineArn=cloud.machine)["executions"] == []


def test_validate_on_aws_reads_the_datasets_from_s3_and_the_accounts_gpu_quota(cloud: Cloud, tmp_path: Path) -> None:
    assert main(["prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--out", str(tmp_path)]) == EXIT_OK
    for name in ("sft", "rft", "eval"):
        cloud.s3.upload_file(str(tmp_path / f"{name}.jsonl"), cloud.data, f"datasets/so/{name}.jsonl")
    cloud.s3.put_object(Bucket=cloud.data, Key="datasets/so/sft.jsonl", Body=b"{}\n" * 9)  # what S3 holds counts
    run_input = {"datasets": {n: f"s3://{cloud.data}/datasets/so/{n}.jsonl" for n in ("sft", "rft", "eval")}}
    (tmp_path / "run.json").write_text(json.dumps(run_input))
    quota = {"ServiceCode": "sagemaker", "QuotaName": "ml.p5.48xlarge for training job usage", "QuotaCode": "L-P5"}
    with Stubber(cloud.quotas) as stub:
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [{**quota, "Value": 2.0}]},
            {"ServiceCode": "sagemaker", "MaxResults": 100},
        )
        code, text = cloud.run("validate", str(tmp_path / "run.json"), "--aws")
    assert code == EXIT_PROBLEMS, text
    assert "quota 'ml.p5.48xlarge for training job usage' (L-P5) is 2" in text
    assert "datasets.sft (sft): line 1: messages: must be a list of at least two turns, user then assistant" in text
    assert "datasets.sft (sft): 0 valid rows" in text and "datasets.rft" not in text

    wrong = {"datasets": {**run_input["datasets"], "eval": "s3://another-bucket/datasets/so/eval.jsonl"}}
    (tmp_path / "run.json").write_text(json.dumps(wrong))
    code, text = cloud.run("validate", str(tmp_path / "run.json"), "--aws")
    assert code == EXIT_PROBLEMS
    assert "datasets.eval: s3://another-bucket/datasets/so/eval.jsonl is outside the project's data bucket" in text


def test_a_missing_stack_is_an_aws_error(cloud: Cloud, capsys: pytest.CaptureFixture) -> None:
    cloud.stack_exists = False
    assert cloud.run("list")[0] == EXIT_AWS
    assert f"--stack {STACK}: Stack with id {STACK} does not exist" in capsys.readouterr().err


def test_list_show_and_compare_read_the_run_records(cloud: Cloud) -> None:
    cloud.record("run-a", "2026-01-01T00:00:00Z", 0.61)
    cloud.record("run-b", "2026-02-01T00:00:00Z", 0.74)
    code, text = cloud.run("list")
    assert code == EXIT_OK
    lines = text.splitlines()
    assert lines[0].startswith("run-b") and "exact_match=0.74" in lines[0] and lines[1].startswith("run-a")
    code, text = cloud.run("show", "run-a")
    assert code == EXIT_OK and "Run run-a (nova): SUCCEEDED" in text and f"{DEPLOYMENT}-run-a" in text
    code, text = cloud.run("compare", "run-a", "run-b")
    assert code == EXIT_OK
    row = next(line for line in text.splitlines() if line.startswith("exact_match"))
    assert row.split()[1:] == ["0.61", "0.74"]
    assert "standard error" not in text  # no run recorded samples
    assert cloud.run("show", "run-zzz")[0] == EXIT_AWS


def test_show_and_compare_show_the_candidate_cost_deployment_warnings_and_standard_errors(cloud: Cloud) -> None:
    run = cloud.record("run-a", "2026-01-01T00:00:00Z", 0.61)
    stage = {
        "status": "SUCCEEDED",
        "metrics": {"exact_match": 0.61},
        "metricStats": {"exact_match": {"n": 200, "stderr": 0.034}},
    }
    skipped = {"status": "SKIPPED"}
    run = RunRecord.model_validate(
        run.to_json()
        | {
            "stages": {"baselineEval": skipped, "sft": skipped, "sftEval": stage, "rft": skipped,
                       "finalEval": {"status": "SUCCEEDED", "metrics": {"exact_match": 0.55}}},
            "gate": {"passed": True, "reasons": ["exact_match 0.61 >= 0.5"], "candidate": "sft",
                     "metric": "exact_match"},
            "metrics": {"metric": "exact_match", "candidate": "rft",
                        "table": {"sft": {"exact_match": 0.61}, "rft": {"exact_match": 0.55}}},
            "deployment": {"arn": DEPLOYMENT, "name": "nova-run-0", "modelArn": _model("run-a"), "status": "Active",
                           "action": "updated", "previousModelArn": _model("run-0")},
            "preflight": {
                "datasets": {"sft": {"kind": "sft", "rows": 200, "bytes": 1, "invalidLines": 0,
                                     "warnings": ["3 rows repeat an earlier row"]}},
                "cost": {"estimatedUsd": 1788.8, "maxUsd": 2000.0, "items": [], "expectedUsd": 627.14},
                "quotas": {"status": "checked"},
                "leakage": {"evalPrompts": 80, "found": {"sft": 4},
                            "warnings": ["4 of 80 evaluation prompts are in sft"]},
            },
        }
    )  # fmt: skip
    cloud.s3.put_object(Bucket=cloud.artifacts, Key="runs/run-a/run.json", Body=record.record_body(run))
    cloud.record("run-b", "2026-02-01T00:00:00Z", 0.74)

    code, text = cloud.run("show", "run-a")

    assert code == EXIT_OK, text
    assert "Candidate: the SFT model" in text
    assert "GPU cost: expected $627.14, worst case $1,788.80 of the $2,000.00 budget" in text
    assert "  - 4 of 80 evaluation prompts are in sft" in text and "  - sft: 3 rows repeat an earlier row" in text
    assert f"{DEPLOYMENT}, updated (the deployment served {_model('run-0')} before)" in text
    assert "0.61 ± 0.034" in text and "samples (n)" in text

    code, text = cloud.run("compare", "run-a", "run-b")

    assert code == EXIT_OK, text
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in text.splitlines()[1:]}
    assert text.splitlines()[1].split()[1:] == ["0.61", "±", "0.034", "0.74"]  # exact_match of the candidates
    assert rows["candidate"] == ["sft", "rft"] and rows["deployment"] == ["updated", "created"]
    assert rows["expected cost"] == ["$627.14", "-"] and rows["worst-case cost"] == ["$1,788.80", "-"]
    assert rows["samples (n)"] == ["200", "-"]
    assert text.rstrip().endswith("± the standard error of a mean over the evaluation's samples")


def test_approve_and_reject_write_the_decision_of_a_waiting_run_to_the_data_bucket(cloud: Cloud) -> None:
    cloud.record("run-a", "2026-01-01T00:00:00Z", 0.61)
    assert cloud.run("approve", "run-a", "--reason", "looks good")[0] == EXIT_AWS  # recorded, not waiting
    cloud.s3.put_object(Bucket=cloud.artifacts, Key=approval.token_key("run-a"), Body=b'{"taskToken": "t"}')
    assert cloud.run("approve", "run-a", "--reason", "looks good")[0] == EXIT_OK
    assert cloud.read("approvals/run-a.json", bucket=cloud.data) == {"decision": "approve", "reason": "looks good"}
    assert cloud.run("reject", "run-a", "--reason", "regressed on HQ")[0] == EXIT_OK
    assert cloud.read("approvals/run-a.json", bucket=cloud.data) == {"decision": "reject", "reason": "regressed on HQ"}
    assert cloud.run("reject", "run-a", "--reason", " ")[0] == EXIT_AWS  # the decision function would refuse it
    assert cloud.run("approve", "run-unknown", "--reason", "x")[0] == EXIT_AWS
    assert cloud.run("approve", "run-a")[0] == 2  # --reason is required


class Served:
    """Runs that reached "Record run" on the rehearsal's Bedrock simulator: each imports a model, moves the
    pipeline's deployment to it (``serving``) and writes its run record and the champion record as the
    pipeline does, with the retention ``MODEL_RETENTION`` of the deployed functions."""

    def __init__(self, cloud: Cloud, simulator: BedrockSimulator, retention: int = 2) -> None:
        self.cloud, self.simulator, self.retention = cloud, simulator, retention
        self.deployment: Deployment | None = None

    def wait(self, deployment: Deployment) -> Deployment:
        while deployment.status not in ("Active", "Failed"):
            assert deployment.poll is not None
            clock.advance(deployment.poll.waitSeconds)
            deployment = serving.check_serving(bedrock=self.cloud.bedrock, deployment=deployment)
        return deployment

    def run(self, run_id: str, started: str, exact_match: float) -> RunRecord:
        bedrock, artifacts = self.cloud.bedrock, self.cloud.artifacts
        checkpoint = f"s3://customer-escrow-{samples.ACCOUNT}-smtj-x/nova-{run_id}/checkpoint/"
        self.simulator.checkpoints[checkpoint] = "rft"
        arn = bedrock.create_custom_model(
            modelName=f"nova-{run_id}", roleArn=samples.IMPORT_ROLE_ARN,
            modelSourceConfig={"s3DataSource": {"s3Uri": checkpoint}},
        )["modelArn"]  # fmt: skip
        clock.advance(Durations().import_ * 60)
        model = ImportedModel(arn=arn, name=f"nova-{run_id}", checkpoint=checkpoint, status="Active")
        champion, etag = record.read_champion(self.cloud.s3, artifacts, "nova")
        plan = samples.plan().model_copy(update={"runId": run_id})
        deployment = serving.start_serving(bedrock=bedrock, plan=plan, model=model, champion=champion)
        deployment = self.wait(deployment)
        run = self.cloud.record(run_id, started, exact_match, deployed=False).model_copy(
            update={"model": model, "deployment": deployment, "endedAt": started}
        )
        self.cloud.s3.put_object(Bucket=artifacts, Key=f"runs/{run_id}/run.json", Body=record.record_body(run))
        crowned, problems = serving.retire(
            bedrock=bedrock,
            champion=serving.crown(record.champion_record(run, artifacts), champion),
            retention=self.retention,
        )
        assert problems == []
        record.write_champion(crowned, s3=self.cloud.s3, bucket=artifacts, etag=etag)
        return run

    def serves(self) -> str:
        champion = Champion.model_validate(self.cloud.read("champions/nova.json"))
        found = self.cloud.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=champion.deploymentArn)
        return str(found["modelArn"])

    def models(self) -> set[str]:
        return {m["modelName"] for m in self.cloud.bedrock.list_custom_models()["modelSummaries"]}


@pytest.fixture
def served(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    simulator = BedrockSimulator(
        account=samples.ACCOUNT, region=REGION, epoch=EPOCH, faults=Faults(), durations=Durations(), checkpoints={}
    )
    monkeypatch.setattr(aws, "pause", clock.advance)  # novactl's waits pass on the simulated clock
    with routed({"bedrock": simulator}), clock.using(clock.Lane(EPOCH)):
        cloud.bedrock = boto3.client("bedrock", region_name=REGION)  # a client made while the simulator answers
        yield Served(cloud, simulator, retention=3)


def test_rollback_moves_the_stable_deployment_back_to_the_previous_model_and_waits(served: Served) -> None:
    first = served.run("run-a", "2026-01-01T00:00:00Z", 0.61)
    second = served.run("run-b", "2026-02-01T00:00:00Z", 0.74)
    assert second.deployment is not None and first.deployment is not None
    assert second.deployment.arn == first.deployment.arn and served.serves() == second.model.arn  # type: ignore[union-attr]

    code, text = served.cloud.run("rollback", "--wait")

    assert code == EXIT_OK, text
    assert served.serves() == first.model.arn  # type: ignore[union-attr]
    assert f"deployment {first.deployment.arn} now serves {first.model.arn} (run run-a)" in text  # type: ignore[union-attr]
    champion = Champion.model_validate(served.cloud.read("champions/nova.json"))
    assert (champion.runId, champion.deploymentArn) == ("run-a", first.deployment.arn)
    assert [s.runId for s in champion.history] == ["run-b"]
    # A second rollback undoes the first (the model it replaced leads the history).
    assert served.cloud.run("rollback", "--wait")[0] == EXIT_OK
    assert served.serves() == second.model.arn  # type: ignore[union-attr]


def test_rollback_to_a_named_earlier_run_and_the_problems_it_names(
    served: Served, capsys: pytest.CaptureFixture
) -> None:
    runs = [served.run(f"run-{n}", f"2026-0{n}-01T00:00:00Z", 0.5 + n / 10) for n in (1, 2, 3)]

    code, text = served.cloud.run("rollback", "--to", "run-1", "--wait")

    assert code == EXIT_OK, text
    assert served.serves() == runs[0].model.arn  # type: ignore[union-attr]
    champion = Champion.model_validate(served.cloud.read("champions/nova.json"))
    assert champion.runId == "run-1" and [s.runId for s in champion.history] == ["run-3", "run-2"]

    assert served.cloud.run("rollback", "--to", "run-1")[0] == EXIT_AWS
    assert "run run-1 is the champion" in capsys.readouterr().err
    assert served.cloud.run("rollback", "--to", "run-9")[0] == EXIT_AWS
    assert "run run-9's model is not of pipeline nova is kept (history: run-3, run-2)" in capsys.readouterr().err


def test_rollback_does_not_overwrite_a_champion_record_a_run_replaced_meanwhile(
    served: Served, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.run("run-a", "2026-01-01T00:00:00Z", 0.61)
    served.run("run-b", "2026-02-01T00:00:00Z", 0.74)
    read = record.read_champion

    def read_then_replaced(s3: Any, bucket: str, pipeline: str) -> tuple[Champion | None, str | None]:
        champion, etag = read(s3, bucket, pipeline)
        # A run records itself between this command's read and its write.
        assert champion is not None
        replaced = champion.model_copy(update={"runId": "run-c"})
        s3.put_object(Bucket=bucket, Key="champions/nova.json", Body=json.dumps(replaced.to_json()))
        return champion, etag

    monkeypatch.setattr(record, "read_champion", read_then_replaced)
    assert served.cloud.run("rollback")[0] == EXIT_AWS
    error = capsys.readouterr().err
    assert "s3://artifacts-bucket/champions/nova.json: a run replaced the champion record" in error
    assert served.cloud.read("champions/nova.json")["runId"] == "run-c"


def test_rollback_without_a_deployed_model_names_the_champion_record(
    cloud: Cloud, capsys: pytest.CaptureFixture
) -> None:
    assert cloud.run("rollback")[0] == EXIT_AWS
    assert "s3://artifacts-bucket/champions/nova.json: no champion record" in capsys.readouterr().err


def test_cleanup_retires_models_beyond_the_deployed_retention_never_the_champions(served: Served) -> None:
    runs = [served.run(f"run-{n}", f"2026-0{n}-01T00:00:00Z", 0.5 + n / 10) for n in (1, 2, 3, 4)]
    assert served.models() == {"nova-run-2", "nova-run-3", "nova-run-4"}  # the pipeline keeps 3 (retention=3)
    # Rolled back to the oldest kept model: the champion is run-2, its model must stay whatever the retention.
    assert served.cloud.run("rollback", "--to", "run-2", "--wait")[0] == EXIT_OK
    # A deployment an older run of the pipeline made on its own (before the stable deployment) is left over.
    stray = served.cloud.bedrock.create_custom_model_deployment(
        modelDeploymentName="old-run-0",
        modelArn=runs[2].model.arn,  # type: ignore[union-attr]
    )["customModelDeploymentArn"]
    clock.advance(Durations().deploy * 60)
    old = served.cloud.record("run-0", "2025-12-01T00:00:00Z", 0.5, deployed=False).model_copy(
        update={"deployment": Deployment(arn=stray, name="old-run-0", modelArn=runs[2].model.arn, status="Active")}  # type: ignore[union-attr]
    )
    served.cloud.s3.put_object(Bucket=served.cloud.artifacts, Key="runs/run-0/run.json", Body=record.record_body(old))
    served.cloud.lambda_retention = "1"

    code, text = served.cloud.run("cleanup")

    assert code == EXIT_OK, text
    assert "keeping 1 model(s) (the deployed pipeline's modelRetention), the champion's (run run-2" in text
    assert {line for line in text.splitlines() if line.startswith("would delete")} == {
        f"would delete deployment {stray}",
        f"would delete model {runs[2].model.arn} (run run-3)",  # type: ignore[union-attr]
        f"would delete model {runs[3].model.arn} (run run-4)",  # type: ignore[union-attr]
    }
    assert served.models() == {"nova-run-2", "nova-run-3", "nova-run-4"}  # listing deletes nothing

    code, text = served.cloud.run("cleanup", "--yes")

    assert code == EXIT_OK, text
    assert served.models() == {"nova-run-2"} and served.serves() == runs[1].model.arn  # type: ignore[union-attr]
    with pytest.raises(served.cloud.bedrock.exceptions.ResourceNotFoundException):
        served.cloud.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=stray)
    champion = Champion.model_validate(served.cloud.read("champions/nova.json"))
    assert [(s.runId, s.deleted) for s in champion.history] == [("run-4", True), ("run-3", True), ("run-1", True)]
    assert served.cloud.run("cleanup", "--keep", "1")[1].rstrip().endswith("nothing to delete")
    assert served.cloud.run("cleanup", "--keep", "0")[0] == 2


def test_cleanup_deletes_a_provisional_deployment_the_record_of_a_bedrock_run_could_not_delete(served: Served) -> None:
    runs = [served.run(f"run-{n}", f"2026-0{n}-01T00:00:00Z", 0.5 + n / 10) for n in (1, 2)]
    model = runs[0].model.arn  # type: ignore[union-attr]
    left = served.cloud.bedrock.create_custom_model_deployment(modelDeploymentName="run-9-final-eval", modelArn=model)
    clock.advance(Durations().deploy * 60)
    arn = left["customModelDeploymentArn"]
    # A gate-rejected run of the Bedrock road (no deployment) whose record could not delete its evaluation's deployment
    rejected = served.cloud.record("run-9", "2026-03-01T00:00:00Z", 0.5, deployed=False).model_copy(
        update={
            "provisionalDeployments": [
                ProvisionalDeployment(stage="finalEval", arn=arn, outcome="not deleted", detail="ThrottlingException")
            ]
        }
    )
    served.cloud.s3.put_object(
        Bucket=served.cloud.artifacts, Key="runs/run-9/run.json", Body=record.record_body(rejected)
    )

    code, text = served.cloud.run("cleanup", "--keep", "3", "--yes")

    assert code == EXIT_OK, text
    with pytest.raises(served.cloud.bedrock.exceptions.ResourceNotFoundException):
        served.cloud.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)


def test_show_names_the_road_and_the_bedrock_roads_jobs_models_and_adopted_deployment() -> None:
    run = bedrock_run()
    run["preflight"] = preflight_with_dataset_notes()
    lines = aws.show_lines(RunRecord.model_validate(run))
    assert lines[1] == "Road: Amazon Bedrock model customization jobs, evaluated through Bedrock inference"
    assert f"Deployment (modelId for Converse): {run['deployment']['arn']}, adopted" in "\n".join(lines)
    assert f"  RFT training custom model: {run['stages']['rft']['customModelArn']}" in lines
    assert f"  SFT evaluation provisional deployment: {run['stages']['sftEval']['deploymentArn']} (deleted)" in lines
    assert any(line.startswith("Bedrock cost: expected ") for line in lines), lines
    assert not any(line.startswith("GPU cost") for line in lines), lines
    sagemaker = aws.show_lines(RunRecord.model_validate(SUCCEEDED_RUN))
    assert sagemaker[1] == "Road: Amazon SageMaker training jobs" and "customization job" not in "\n".join(sagemaker)


def test_watch_prints_progress_until_the_execution_ends(cloud: Cloud) -> None:
    arn = cloud.machine.replace(":stateMachine:", ":execution:") + ":so-1"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def describe(status: str) -> dict:
        return {
            "executionArn": arn, "stateMachineArn": cloud.machine, "name": "so-1", "status": status,
            "startDate": start,
            **({"error": "PreflightFailed", "cause": "1 problem found"} if status == "FAILED" else {}),
        }  # fmt: skip

    entered = {"id": 1, "type": "TaskStateEntered", "timestamp": start,
               "stateEnteredEventDetails": {"name": "Preflight checks"}}  # fmt: skip
    exited = {"id": 2, "type": "TaskStateExited", "timestamp": start + dt.timedelta(minutes=3),
              "stateExitedEventDetails": {"name": "Preflight checks", "output": "{}"}}  # fmt: skip
    with Stubber(cloud.sfn) as stub:
        stub.add_response("describe_execution", describe("RUNNING"), {"executionArn": arn})
        stub.add_response("get_execution_history", {"events": [entered]}, {"executionArn": arn, "maxResults": 1000})
        stub.add_response("describe_execution", describe("RUNNING"), {"executionArn": arn})
        stub.add_response(
            "get_execution_history", {"events": [entered, exited]}, {"executionArn": arn, "maxResults": 1000}
        )
        stub.add_response("describe_execution", describe("FAILED"), {"executionArn": arn})
        stub.add_response(
            "get_execution_history", {"events": [entered, exited]}, {"executionArn": arn, "maxResults": 1000}
        )
        code, text = cloud.run("watch", "so-1", "--interval", "0")
        stub.assert_no_pending_responses()
    assert code == EXIT_PROBLEMS
    assert "Preflight checks" in text and "(3m)" in text
    assert text.rstrip().endswith("PreflightFailed: 1 problem found")
