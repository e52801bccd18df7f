"""The harness itself, on a small fixture state machine (tests/integration/fixture_stack.py).

Each test runs the fixture definition through moto's interpreter with the bridge
installed and checks one bridged behaviour the pipeline relies on.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambdas.pipeline.quotas import service_quotas_lookup
from offline.asl import RenderError, assert_only_placeholders_differ, render_definition
from offline.shapes import definition_problems, request_problems
from offline.synth import Synthesized
from rehearsal import bridge, clock
from rehearsal.cloud import TemplateError
from rehearsal.runner import MOTO_CONFIG, Result, Scenario, rehearse
from rehearsal.simulators import routing
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.faults import Durations, Faults
from rehearsal.simulators.functions import FunctionRuntime
from rehearsal.simulators.sagemaker import SageMakerSimulator
from rehearsal.simulators.service_quotas import ServiceQuotasSimulator
from tests.integration.fixture_stack import definition, fixture_input, fixture_synthesized


def _run(tmp_path: Path, scenario: Scenario | None = None, instance_type: str = "ml.p5.48xlarge") -> Result:
    scenario = scenario or Scenario()
    scenario.replace_input = fixture_input()
    return rehearse(scenario, synthesized=fixture_synthesized(tmp_path, instance_type), out_dir=tmp_path / "out")


def _exited_at(result: Result, state: str) -> float:
    start = dt.datetime.fromisoformat(result.history[0]["timestamp"])
    for event in result.history:
        if event.get("stateExitedEventDetails", {}).get("name") == state:
            return (dt.datetime.fromisoformat(event["timestamp"]) - start).total_seconds()
    raise AssertionError(f"{state} never exited")


def test_lambda_tasks_run_the_real_handler_with_each_functions_environment(tmp_path: Path) -> None:
    # Given two functions sharing one handler module with different GREETING values
    # When the fixture runs
    result = _run(tmp_path)
    # Then each call saw its own environment and its own module instance
    assert result.status == "SUCCEEDED"
    assert result.output["english"]["value"]["greeting"] == "hello"
    assert result.output["english"]["value"]["loadedWith"] == "hello"
    inner = result.output["nested"]["value"]
    assert inner["inner"]["greeting"] == "bonjour" and inner["inner"]["loadedWith"] == "bonjour"
    # and a function that invoked another one still reads its own settings afterwards
    assert inner["myGreeting"] == "nested"
    # and the handler's print went to its log, not to the rehearsal's output
    assert "greeting" in (tmp_path / "out" / "logs" / "GreetEnglish.log").read_text()


def test_a_handler_exception_is_caught_by_its_class_name_with_the_lambda_error_payload(tmp_path: Path) -> None:
    result = _run(tmp_path)
    error = result.output["budgetError"]
    assert error["Error"] == "QuotaBreached"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "QuotaBreached"
    assert cause["errorMessage"] == "budget 5 exceeded"
    assert cause["stackTrace"]


def test_parallel_branches_overlap_on_simulated_time_and_waits_do_not_sleep(tmp_path: Path) -> None:
    result = _run(tmp_path)
    # The 10-minute wait ends a French greeting at +10 min, beside a 40-minute SFT job
    assert 600 <= _exited_at(result, "Greet in French") < 700
    assert 2400 <= _exited_at(result, "Run SFT training job") < 2500
    # and the Parallel ends with its longest branch, not the sum of both
    assert 2400 <= _exited_at(result, "Train and wait") < 2500
    assert result.wall_seconds < 30


def test_sync_training_job_completes_and_writes_the_checkpoint_manifest(tmp_path: Path) -> None:
    result = _run(tmp_path)
    job = result.output["branches"][1]["job"]
    assert job == {
        "name": "fixture-sft-a1",
        "status": "Completed",
        "arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/fixture-sft-a1",
    }
    (sft,) = result.job("sft")
    assert sft["checkpoint"].startswith("s3://customer-escrow-123456789012-smtj-")
    assert sft["checkpoint"].endswith("/fixture-sft-a1/checkpoint/")


def test_a_failed_training_job_raises_states_task_failed_with_the_description_as_cause(tmp_path: Path) -> None:
    result = _run(tmp_path, Scenario(fail_at="sft"))
    error = result.output["branches"][1]["jobError"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert "failure injected" in cause["FailureReason"]
    assert result.job("sft")[0]["status"] == "Failed"


def test_throttling_surfaces_as_a_sagemaker_error_and_the_retry_waits_on_the_simulated_clock(tmp_path: Path) -> None:
    result = _run(tmp_path, Scenario(throttle={"sft": "ThrottlingException"}))
    failed = [e for e in result.history if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "SageMaker.ThrottlingException"
    assert result.rejected_job_requests == [{"name": "fixture-sft-a1", "stage": "sft", "error": "ThrottlingException"}]
    (sft,) = result.job("sft")
    assert sft["status"] == "Completed"
    assert sft["start_minute"] >= 5  # the 300-second retry interval passed on the branch's clock


def test_an_invalid_enum_in_the_job_request_is_rejected_like_the_service_would(tmp_path: Path) -> None:
    result = _run(tmp_path, instance_type="ml.ml.g5.xlarge")
    error = result.output["branches"][1]["jobError"]
    assert error["Error"] == "SageMaker.ValidationException"
    assert "ml.ml.g5.xlarge" in error["Cause"] and "ResourceConfig.InstanceType" in error["Cause"]
    assert result.jobs == []


def test_request_problems_name_unknown_members_lengths_and_patterns() -> None:
    problems = request_problems(
        "sagemaker",
        "CreateTrainingJob",
        {
            "TrainingJobName": "bad_name_" + "x" * 70,
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "OutputDataConfig": {"S3OutputPath": "s3://b/p"},
            "Unknown": 1,
        },
    )
    text = "\n".join(problems)
    assert "params.Unknown: not a member of CreateTrainingJobRequest" in text
    assert "params.TrainingJobName: 79 characters, valid length [1, 63]" in text
    assert "params.TrainingJobName: 'bad_name_" in text and "must match pattern" in text
    assert request_problems("lambda", "Invoke", {"Payload": b"{}"}) == [
        "params: required member FunctionName of InvocationRequest is missing"
    ]


def test_static_check_rejects_an_unknown_parameter_name() -> None:
    document = definition()
    job = document["States"]["Train and wait"]["Branches"][1]["States"]["Run SFT training job"]
    job["Parameters"]["ResourceConfig"]["InstanceTyp"] = "ml.p5.48xlarge"
    job["Parameters"]["Tag"] = []
    problems = definition_problems(document, names_only=True)
    assert any("ResourceConfig.InstanceTyp: not a member" in p for p in problems)
    assert any("Parameters.Tag: not a member" in p for p in problems)
    assert definition_problems(definition(), names_only=True) == []


def test_rendering_changes_nothing_but_placeholders() -> None:
    synthesized = json.dumps({"A": "${Fn}", "B": "keep ${Fn} here", "C": 1})
    subs = {"Fn": "arn:aws:lambda:us-east-1:123456789012:function:f"}
    rendered = render_definition(synthesized, subs)
    assert_only_placeholders_differ(synthesized, rendered, subs)
    with pytest.raises(RenderError, match="beyond its placeholders"):
        assert_only_placeholders_differ(synthesized, rendered.replace('"C": 1', '"C": 2'), subs)
    with pytest.raises(RenderError, match="without a substitution"):
        render_definition(json.dumps({"A": "${Missing}"}), subs)
    with pytest.raises(RenderError, match="without a substitution"):
        assert_only_placeholders_differ(json.dumps({"A": "${Missing}"}), "{}", subs)


def test_bedrock_import_goes_creating_to_active_on_the_clock_and_is_idempotent(tmp_path: Path) -> None:
    epoch = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    faults, durations = Faults(), Durations()
    with mock_aws(config=MOTO_CONFIG), FunctionRuntime(code_root=tmp_path, log_dir=None) as runtime:
        sagemaker = SageMakerSimulator(
            account="123456789012", region="us-east-1", epoch=epoch, faults=faults, durations=durations
        )
        bedrock = BedrockSimulator(
            account="123456789012",
            region="us-east-1",
            epoch=epoch,
            faults=faults,
            durations=durations,
            checkpoints=sagemaker.checkpoints,
        )
        sagemaker.register_checkpoint("s3://customer-escrow-123456789012-smtj-x/job/checkpoint/", "rft")
        with bridge.installed(runtime=runtime, sagemaker=sagemaker, bedrock=bedrock), clock.using(clock.Lane(epoch)):
            client = boto3.client("bedrock", region_name="us-east-1")
            request = {
                "modelName": "nova-run-1",
                "roleArn": "arn:aws:iam::123456789012:role/import",
                "clientRequestToken": "run-1-import",
                "modelSourceConfig": {
                    "s3DataSource": {"s3Uri": "s3://customer-escrow-123456789012-smtj-x/job/checkpoint/"}
                },
            }
            arn = client.create_custom_model(**request)["modelArn"]
            assert client.create_custom_model(**request)["modelArn"] == arn  # same token, same model
            assert len(bedrock.models) == 1
            assert client.get_custom_model(modelIdentifier=arn)["modelStatus"] == "Creating"
            clock.advance(15 * 60)
            assert client.get_custom_model(modelIdentifier=arn)["modelStatus"] == "Active"
            deployment = client.create_custom_model_deployment(
                modelDeploymentName="nova-run-1",
                modelArn=arn,
                clientRequestToken="run-1-deploy",
            )["customModelDeploymentArn"]
            clock.advance(10 * 60)
            status = client.get_custom_model_deployment(customModelDeploymentIdentifier=deployment)["status"]
            assert status == "Active"
            # A checkpoint no job produced fails the import; a bad name never reaches the service
            unknown = client.create_custom_model(
                **{
                    **request,
                    "modelName": "other",
                    "clientRequestToken": "t2",
                    "modelSourceConfig": {"s3DataSource": {"s3Uri": "s3://customer-escrow-1-smtj-x/nope/"}},
                }
            )["modelArn"]
            clock.advance(15 * 60)
            model = client.get_custom_model(modelIdentifier=unknown)
            assert model["modelStatus"] == "Failed" and "does not exist" in model["failureMessage"]
            with pytest.raises(client.exceptions.ValidationException, match="must match pattern"):
                client.create_custom_model(**{**request, "modelName": "bad name!", "clientRequestToken": "t3"})


def test_service_quotas_calls_reach_the_simulator_and_agree_with_sagemaker(tmp_path: Path) -> None:
    epoch = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with mock_aws(config=MOTO_CONFIG), FunctionRuntime(code_root=tmp_path, log_dir=None) as runtime:
        sagemaker = SageMakerSimulator(
            account="123456789012",
            region="us-east-1",
            epoch=epoch,
            faults=Faults(),
            durations=Durations(),
            quotas={"ml.p5.48xlarge": 4},
        )
        bedrock = BedrockSimulator(
            account="123456789012",
            region="us-east-1",
            epoch=epoch,
            faults=Faults(),
            durations=Durations(),
            checkpoints=sagemaker.checkpoints,
        )
        quotas = ServiceQuotasSimulator({"ml.p5.48xlarge": 4})
        with bridge.installed(runtime=runtime, sagemaker=sagemaker, bedrock=bedrock, service_quotas=quotas):
            client = boto3.client("service-quotas", region_name="us-east-1")
            found = service_quotas_lookup(client)(
                ["ml.p5.48xlarge for training job usage", "ml.g5.12xlarge for training job usage"]
            )
            assert found["ml.p5.48xlarge for training job usage"]["value"] == 4
            assert found["ml.g5.12xlarge for training job usage"] == {
                "value": 0,
                "code": found["ml.g5.12xlarge for training job usage"]["code"],
                "source": "default",
            }
            pages = list(
                client.get_paginator("list_aws_default_service_quotas").paginate(
                    ServiceCode="sagemaker", PaginationConfig={"PageSize": 1}
                )
            )
            assert len(pages) > 1  # paged by MaxResults, as the service does
            # SageMaker refuses an instance type whose quota is the default 0
            assert sagemaker._over_quota({"ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1}})


def test_a_jsonata_definition_is_refused_up_front(tmp_path: Path) -> None:
    from tests.integration.fixture_stack import template

    document = template()
    machine = document["Resources"]["StateMachine1A2B3C4D"]["Properties"]
    machine["DefinitionString"] = json.dumps(
        {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    )
    with pytest.raises(TemplateError, match="JSONata"):
        rehearse(Scenario(replace_input={}), synthesized=Synthesized(tmp_path, document))


def test_importing_the_rehearsal_changes_nothing_until_a_run_routes_calls() -> None:
    # Given a fresh interpreter, when every rehearsal module is imported, then botocore's handlers,
    # the interpreter's classes and the standard streams are untouched; routing adds handlers only
    # for the duration of its block
    script = """
import sys
from botocore.handlers import BUILTIN_HANDLERS
from moto.awslambda_simple.models import LambdaSimpleBackend
before, invoke, streams = list(BUILTIN_HANDLERS), LambdaSimpleBackend.invoke, (sys.stdout, sys.stderr)
import rehearsal.__main__, rehearsal.bridge, rehearsal.runner
from rehearsal.simulators import bedrock, faults, functions, routing, sagemaker, service_quotas
assert BUILTIN_HANDLERS == before, [h for h in BUILTIN_HANDLERS if h not in before]
assert LambdaSimpleBackend.invoke is invoke and (sys.stdout, sys.stderr) == streams
with routing.routed({"bedrock": object()}) as router:
    assert set(router.handlers()) <= set(BUILTIN_HANDLERS)
assert BUILTIN_HANDLERS == before
print("clean")
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "clean", result.stderr[-2000:]


def test_routing_reaches_clients_of_an_existing_default_session_and_stops_when_the_run_ends() -> None:
    class Quotas:
        def list_service_quotas(self, params: dict) -> dict:
            return {"Quotas": [{"QuotaName": "simulated", "Value": 1.0}]}

    with mock_aws():
        boto3.setup_default_session(region_name="us-east-1")
        with routing.routed({"service-quotas": Quotas()}) as router:
            client = boto3.client("service-quotas")
            assert client.list_service_quotas(ServiceCode="sagemaker")["Quotas"][0]["QuotaName"] == "simulated"
        assert router.calls == [("service-quotas", "ListServiceQuotas", {"ServiceCode": "sagemaker"})]
        after = boto3.client("service-quotas")
        with pytest.raises(NotImplementedError, match="list_service_quotas"):  # moto has no Service Quotas
            after.list_service_quotas(ServiceCode="sagemaker")


def test_the_history_comes_newest_first_when_asked_as_step_functions_returns_it() -> None:
    # The notify function reads an unfinished run's trail newest first (reverseOrder); moto ignores the flag.
    import time
    from unittest import mock

    from moto.stepfunctions.responses import StepFunctionResponse

    machine = {
        "StartAt": "One",
        "States": {"One": {"Type": "Pass", "Next": "Two"}, "Two": {"Type": "Pass", "End": True}},
    }
    with mock_aws(config=MOTO_CONFIG):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/machine"
        arn = sfn.create_state_machine(name="order", definition=json.dumps(machine), roleArn=role)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        deadline = time.monotonic() + 10
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        with mock.patch.object(StepFunctionResponse, "get_execution_history", bridge._execution_history):
            newest_first = sfn.get_execution_history(executionArn=execution, reverseOrder=True)["events"]
            oldest_first = sfn.get_execution_history(executionArn=execution, reverseOrder=False)["events"]
    ids = [e["id"] for e in oldest_first]
    assert len(ids) > 2 and ids == sorted(ids)
    assert [e["id"] for e in newest_first] == sorted(ids, reverse=True)
    assert newest_first[0]["type"] == "ExecutionSucceeded"
