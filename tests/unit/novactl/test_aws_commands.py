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

from lambdas.pipeline import approval
from lambdas.pipeline.schema import Champion, CollectedMetrics, Deployment, ImportedModel, MetricsTable, RunRecord
from novactl.cli import EXIT_AWS, EXIT_OK, EXIT_PROBLEMS, main

REGION = "us-east-1"
STACK = "NovaCustomization"
DEPLOYMENT = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123def456"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stackoverflow"
DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


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
        else:
            stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        stub.activate()
        return client

    def clients(self, service: str) -> Any:
        if service == "cloudformation":
            return self.cloudformation()
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

    def champion(self, run_id: str) -> None:
        champion = Champion(pipeline="nova", runId=run_id, modelArn=_model(run_id), deploymentArn=DEPLOYMENT)
        self.s3.put_object(Bucket=self.artifacts, Key="champions/nova.json", Body=json.dumps(champion.to_json()))

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
    assert "datasets.sft (sft): line 1: 'messages' must be a non-empty list" in text

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
    assert cloud.run("show", "run-zzz")[0] == EXIT_AWS


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


def test_rollback_moves_the_champion_deployment_to_the_earlier_model(cloud: Cloud) -> None:
    cloud.record("run-a", "2026-01-01T00:00:00Z", 0.61, deployed=False)
    cloud.record("run-b", "2026-02-01T00:00:00Z", 0.74, deployed=False)
    cloud.champion("run-b")
    with Stubber(cloud.bedrock) as stub:
        stub.add_response(
            "update_custom_model_deployment",
            {"customModelDeploymentArn": DEPLOYMENT},
            {"customModelDeploymentIdentifier": DEPLOYMENT, "modelArn": _model("run-a")},
        )
        code, text = cloud.run("rollback", "--to", "run-a")
        stub.assert_no_pending_responses()
    assert code == EXIT_OK, text
    champion = cloud.read("champions/nova.json")
    assert champion["runId"] == "run-a" and champion["deploymentArn"] == DEPLOYMENT
    assert champion["modelArn"] == _model("run-a")


def test_cleanup_lists_then_deletes_what_is_neither_the_champion_nor_recent(cloud: Cloud) -> None:
    for index, run in enumerate(("run-a", "run-b", "run-c", "run-d"), start=1):
        cloud.record(run, f"2026-0{index}-01T00:00:00Z", 0.5 + index / 10)
    cloud.champion("run-a")  # rolled back to the oldest: the champion's deployment serves its model
    code, text = cloud.run("cleanup", "--keep", "2")
    assert code == EXIT_OK
    assert sorted(line for line in text.splitlines() if line.startswith("would delete")) == [
        f"would delete deployment {DEPLOYMENT}-run-a",
        f"would delete deployment {DEPLOYMENT}-run-b",
        f"would delete model {_model('run-b')}",
    ]
    with Stubber(cloud.bedrock) as stub:
        for run in ("run-b", "run-a"):
            deployment = {"customModelDeploymentIdentifier": f"{DEPLOYMENT}-{run}"}
            stub.add_response("delete_custom_model_deployment", {}, deployment)
        stub.add_response("delete_custom_model", {}, {"modelIdentifier": _model("run-b")})
        code, text = cloud.run("cleanup", "--keep", "2", "--yes")
        stub.assert_no_pending_responses()
    assert code == EXIT_OK, text


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
