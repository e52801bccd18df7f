"""Run the synthesized state machine end to end on simulated AWS and collect what happened.

:func:`rehearse` is shared by ``python -m rehearsal`` and the integration tests:
it provisions the template's resources in moto, uploads generated datasets,
starts one execution with the scenario's run input, prints the live progress
view, simulates the EventBridge delivery of the execution's end to the notify
function, copies ``run.json`` and ``report.html`` out of the artifacts bucket and
checks that nothing was left half-created.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws
from moto.core.config import DefaultConfig
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from lambdas.common import run_lock
from offline import ACCOUNT
from offline.synth import STACK_NAME, Synthesized, synthesize
from rehearsal import bridge, clock, datasets
from rehearsal.cloud import SimulatedStack
from rehearsal.progress import ProgressView, Span, fmt_minutes, timeline_lines
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.bedrock_runtime import BedrockRuntimeSimulator
from rehearsal.simulators.faults import FLAT_METRICS, Durations, Faults
from rehearsal.simulators.functions import FunctionRuntime
from rehearsal.simulators.sagemaker import SageMakerSimulator
from rehearsal.simulators.service_quotas import DEFAULT_QUOTAS, ServiceQuotasSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_PREFIX = "datasets/rehearsal"
MOTO_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
OBJECT_CREATED = "Object Created"
PIPELINE = "nova"  # the pipelineName of cdk.json the rehearsal synthesizes


@dataclass
class Scenario:
    """What the rehearsal runs: the run input and what goes wrong.

    ``run_input`` is deep-merged over the default input (the three generated
    datasets); ``replace_input`` is used as-is instead (a bad input).
    ``previous_checkpoints`` are checkpoints of an earlier run (URI -> stage) for ``resumeFrom``: the simulated
    SageMaker knows them and the artifacts bucket holds that run's record, ``runs/<previous_run>/run.json``,
    with each as its stage's checkpoint (what "Validate run" looks for).
    ``quotas`` are the account's training-job instance quotas (instance type -> instances): preflight reads
    them and ``CreateTrainingJob`` is refused with ``ResourceLimitExceeded`` beyond them.
    ``fail_eval_of`` (with ``fail_at="eval"``) picks the evaluation that fails: ``final`` (the default),
    or the evaluation of ``baseline``/``sft`` (beside training: recorded, not fatal).
    ``data_dir`` (with ``replace_input``, a user's own run input) serves each dataset URI of the input from
    the file of the same name in that folder: the URI's bucket becomes the simulated data bucket, its key stays
    (:func:`rehearsal.datasets.dataset_files`).
    """

    fail_at: str | None = None
    fail_eval_of: str = "final"
    throttle: dict[str, str] = field(default_factory=dict)
    gate_reject: bool = False
    run_input: dict = field(default_factory=dict)
    replace_input: dict | None = None
    previous_checkpoints: dict[str, str] = field(default_factory=dict)
    previous_run: str = "earlier-run-5e1f00d2"
    quotas: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    durations: Durations = field(default_factory=Durations)
    execution_name: str | None = None
    wall_timeout_seconds: float = 120.0
    data_dir: Path | None = None
    # An execution ARN that already holds the run lock when the rehearsed execution starts (a concurrent run).
    lock_held_by: str | None = None
    # Added to every metric of the final evaluation (at most 1): a retrained model that scores better, so a
    # later run of a rehearsal of several beats the deployed champion.
    final_gain: float = 0.0
    # In a rehearsal of several runs: the run input, made from the previous run's result (e.g. its resume input).
    input_from: Callable[[Result], dict] | None = None
    # With a stack that requires approval (context approval=required): what the approver does when the run waits,
    # ``approve`` or ``reject`` (a decision file after APPROVAL_DELAY_SECONDS) or ``expire`` (nothing).
    approval: str | None = None
    # The run input's ``platform`` (``sagemaker`` or ``bedrock``), set over the input; None keeps the input's own.
    platform: str | None = None
    # Stop the execution (StopExecution, as a person would: it ends ABORTED) once it enters the state of this name.
    abort_in: str | None = None

    def road(self) -> str:
        """The platform the run takes: ``platform``, else the run input's own, else ``sagemaker``."""
        own = (self.replace_input if self.replace_input is not None else self.run_input).get("platform")
        return str(self.platform or own or "sagemaker")

    def faults(self) -> Faults:
        faults = Faults(fail_at=self.fail_at, fail_eval_of=self.fail_eval_of, throttle=dict(self.throttle))
        if self.gate_reject:
            faults.metrics = FLAT_METRICS
        if self.final_gain:
            final = {name: min(1.0, round(value + self.final_gain, 4)) for name, value in faults.metrics["rft"].items()}
            faults.metrics = {**faults.metrics, "rft": final}
        return faults


@dataclass
class Result:
    """Everything a rehearsal observed; ``exit_code`` is 0 only for a run that deployed a model."""

    status: str
    error: str | None
    cause: str | None
    run_input: dict
    output: Any
    run: dict | None
    run_path: Path | None
    report_path: Path | None
    summary_path: Path | None
    jobs: list[dict]
    rejected_job_requests: list[dict]
    models: list[dict]
    deployments: list[dict]
    bedrock_calls: list[dict]
    notifications: list[dict]
    spans: list[Span]
    history: list[dict]
    problems: list[str]
    simulated_seconds: float
    wall_seconds: float
    definition: str = ""
    definition_template: str = ""
    substitutions: dict[str, str] = field(default_factory=dict)
    function_errors: list[dict] = field(default_factory=list)
    synth_seconds: float = 0.0
    # Who holds the run lock once the end event was delivered (None: free, as every end must leave it).
    lock_holder_after: str | None = None
    ended_seconds: float = 0.0  # when the run ended, in simulated seconds since the account's first run began
    rollback: dict | None = None  # a rollback after the run (rehearse_runs): deployment, models, champion run
    # Converse calls of the run's evaluations on Bedrock: model ID, evaluated model, minute, answered correctly
    inference_calls: list[dict] = field(default_factory=list)

    @property
    def deployment_arn(self) -> str | None:
        """The active deployment the run record says this run deployed to."""
        active = {d["arn"] for d in self.deployments if d["status"] == "Active"}
        recorded = ((self.run or {}).get("deployment") or {}).get("arn")
        return recorded if recorded in active else None

    @property
    def exit_code(self) -> int:
        dry_run = (self.run or {}).get("status") == "DRY_RUN"
        if self.status == "SUCCEEDED" and (self.deployment_arn or dry_run) and not self.problems:
            return 0
        return 2 if self.status == "SUCCEEDED" else 1

    def job(self, stage: str) -> list[dict]:
        return [j for j in self.jobs if j["stage"] == stage]

    def states_entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]


# What the generated run input adds on the Bedrock road: an RFT job there is billed per training hour and the
# budget check assumes the worst case, a job that runs until its timeout (rft.maxRuntimeHours); eight hours
# leave room for the simulated three-hour job and keep the worst case within the default budget.
BEDROCK_INPUT: dict = {"rft": {"maxRuntimeHours": 8}}


def default_run_input(data_bucket: str, evaluation_task: str = "gen_qa") -> dict:
    """The generated datasets; an ``rft_eval`` evaluation reads the evaluation questions in the RFT format."""
    files = {"sft": "sft", "rft": "rft", "eval": "rft_eval" if evaluation_task == "rft_eval" else "eval"}
    return {"datasets": {kind: f"s3://{data_bucket}/{DATASET_PREFIX}/{name}.jsonl" for kind, name in files.items()}}


def earlier_run_record(run_id: str, checkpoints: Mapping[str, str]) -> bytes:
    """The ``run.json`` of an earlier, successful run of the pipeline whose stages recorded ``checkpoints``
    (URI -> stage)."""
    from lambdas.pipeline.schema import RunRecord, StageRecord, StageRecords

    records = {stage: StageRecord(status="SKIPPED") for stage in StageRecords.model_fields}
    for uri, stage in checkpoints.items():
        records[stage] = StageRecord(status="SUCCEEDED", jobName=f"{PIPELINE}-{run_id}-{stage}-a1", checkpoint=uri)
    record = RunRecord(runId=run_id, pipeline=PIPELINE, status="SUCCEEDED", stages=StageRecords.model_validate(records))
    return json.dumps(record.to_json()).encode()


def rehearse(
    scenario: Scenario | None = None,
    *,
    synthesized: Synthesized | None = None,
    out_dir: Path | None = None,
    out: TextIO | None = None,
) -> Result:
    """Run one scenario; ``out`` receives the progress view (silent when None)."""
    return rehearse_runs([scenario or Scenario()], synthesized=synthesized, out_dir=out_dir, out=out)[-1]


def rehearse_runs(
    scenarios: Sequence[Scenario],
    *,
    synthesized: Synthesized | None = None,
    out_dir: Path | None = None,
    out: TextIO | None = None,
    rollback: bool = False,
) -> list[Result]:
    """Run the scenarios one after the other against the same simulated account: the second run finds the
    first run's champion record, deployment and models. With several runs, run ``k``'s outputs go to
    ``out_dir/run-<k>``. The account (quotas, durations, earlier checkpoints) is the first scenario's; each run
    has its own run input and failures. ``rollback``: after the last run, move the pipeline's deployment back to
    the previous champion's model (``lambdas.pipeline.serving.rollback``), kept in the last result."""
    if not scenarios:
        raise ValueError("no scenario to rehearse")
    first = scenarios[0]
    out = out or io.StringIO()
    started = time.monotonic()
    synthesized_here = synthesized is None
    synthesized = synthesized or synthesize()
    synth_seconds = time.monotonic() - started if synthesized_here else 0.0
    results: list[Result] = []
    with ExitStack() as stack:
        stack.enter_context(_aws_environment())
        stack.enter_context(_quiet_interpreter_logs())
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        runtime = stack.enter_context(
            FunctionRuntime(code_root=REPO_ROOT, log_dir=out_dir / "logs" if out_dir else None)
        )
        epoch = dt.datetime.now(dt.UTC).replace(microsecond=0)
        faults, durations = first.faults(), first.durations
        region = os.environ["AWS_DEFAULT_REGION"]
        sagemaker = SageMakerSimulator(
            account=ACCOUNT,
            region=region,
            epoch=epoch,
            faults=faults,
            durations=durations,
            invoke_lambda=_invoke_function,
            quotas=first.quotas,
        )
        bedrock = BedrockSimulator(
            account=ACCOUNT,
            region=region,
            epoch=epoch,
            faults=faults,
            durations=durations,
            checkpoints=sagemaker.checkpoints,
            invoke_lambda=_invoke_function,
        )
        inference = BedrockRuntimeSimulator(bedrock)
        quotas = ServiceQuotasSimulator(first.quotas)
        stack.enter_context(
            bridge.installed(
                runtime=runtime,
                sagemaker=sagemaker,
                bedrock=bedrock,
                service_quotas=quotas,
                bedrock_runtime=inference,
            )
        )
        for uri, stage in first.previous_checkpoints.items():
            sagemaker.register_checkpoint(uri, stage)

        cloud = SimulatedStack(synthesized, runtime, region=region).provision()
        data_bucket = cloud.bucket("DataBucket")
        s3 = boto3.client("s3", region_name=region)
        if first.previous_checkpoints:
            s3.put_object(
                Bucket=cloud.bucket("ArtifactsBucket"),
                Key=f"runs/{first.previous_run}/run.json",
                Body=earlier_run_record(first.previous_run, first.previous_checkpoints),
            )
        account = _Account(cloud, runtime, sagemaker, bedrock, s3, region, epoch, data_bucket, inference)
        offset = 0.0
        for index, scenario in enumerate(scenarios):
            run_dir = out_dir / f"run-{index + 1}" if out_dir is not None and len(scenarios) > 1 else out_dir
            if len(scenarios) > 1:
                out.write(f"\n=== Run {index + 1} of {len(scenarios)} ===\n")
            if scenario.input_from is not None and results:
                scenario = dataclasses.replace(scenario, replace_input=scenario.input_from(results[-1]))
            result = _rehearse_one(account, scenario, offset=offset, out=out, out_dir=run_dir)
            results.append(result)
            offset = result.ended_seconds + RUN_GAP_SECONDS
        if rollback and results:
            with clock.using(clock.Lane(epoch, offset)):
                results[-1].rollback = _roll_back(account, durations)
    for result in results:
        result.wall_seconds = time.monotonic() - started
        result.synth_seconds = synth_seconds
    return results


# Simulated time between the end of a run and the start of the next one in a rehearsal of several runs.
RUN_GAP_SECONDS = 3600.0


@dataclass
class _Account:
    """The simulated account a rehearsal's runs share."""

    cloud: SimulatedStack
    runtime: FunctionRuntime
    sagemaker: SageMakerSimulator
    bedrock: BedrockSimulator
    s3: Any
    region: str
    epoch: dt.datetime
    data_bucket: str
    inference: BedrockRuntimeSimulator


def _roll_back(account: _Account, durations: Durations) -> dict:
    """Roll the pipeline's deployment back as an operator would, then read what it serves once the move is done."""
    from lambdas.pipeline import record, serving

    artifacts = account.cloud.bucket("ArtifactsBucket")
    champion, etag = record.read_champion(account.s3, artifacts, PIPELINE)
    if champion is None:
        raise RuntimeError(f"{PIPELINE}: no champion record to roll back from (no run deployed a model)")
    bedrock = boto3.client("bedrock", region_name=account.region)
    rolled = serving.rollback(bedrock=bedrock, champion=champion)
    record.write_champion(rolled, s3=account.s3, bucket=artifacts, etag=etag)
    clock.advance(durations.deploy * 60)
    served = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=rolled.deploymentArn)
    return {
        "deploymentArn": rolled.deploymentArn,
        "fromModel": champion.modelArn,
        "toModel": rolled.modelArn,
        "champion": rolled.runId,
        "serves": served["modelArn"],
    }


def _rehearse_one(account: _Account, scenario: Scenario, *, offset: float, out: TextIO, out_dir: Path | None) -> Result:
    """One execution, started ``offset`` simulated seconds after the account's epoch."""
    cloud, sagemaker, bedrock, s3, region = (
        account.cloud,
        account.sagemaker,
        account.bedrock,
        account.s3,
        account.region,
    )
    faults = scenario.faults()
    sagemaker.faults = bedrock.faults = faults
    corrupt = scenario.fail_at == "preflight"
    generated = datasets.all_datasets(corrupt=corrupt, bedrock=scenario.road() == "bedrock")
    for kind, body in generated.items():
        s3.put_object(Bucket=account.data_bucket, Key=f"{DATASET_PREFIX}/{kind}.jsonl", Body=body)
    # The simulated models know the rows' references (evaluation rows first: their index decides the answer)
    for kind in ("eval", "rft_eval", "rft", "sft"):
        account.inference.learn(generated[kind])
    run_input = (
        copy.deepcopy(scenario.replace_input)
        if scenario.replace_input is not None
        else _merge(
            default_run_input(account.data_bucket, (scenario.run_input.get("evaluation") or {}).get("task", "gen_qa")),
            scenario.run_input,
        )
    )
    if scenario.data_dir is not None:
        files, problems = datasets.dataset_files(run_input, scenario.data_dir)
        if problems:
            raise ValueError("\n".join(problems))
        run_input = datasets.in_bucket(run_input, account.data_bucket)
        for key, path in sorted(files.items(), key=lambda item: item[0] != _dataset_key(run_input, "eval")):
            s3.put_object(Bucket=account.data_bucket, Key=key, Body=path.read_bytes())
            account.inference.learn(path.read_bytes())
    if scenario.platform is not None:
        run_input["platform"] = scenario.platform
    if scenario.road() == "bedrock" and scenario.replace_input is None:
        run_input = _merge(BEDROCK_INPUT, run_input)
    start = account.epoch + dt.timedelta(seconds=offset)
    name = scenario.execution_name or f"rehearsal-{start:%Y%m%d-%H%M%S}"
    out.write(f"Rehearsing {STACK_NAME} on simulated AWS: execution {name}\n")
    out.write(f"  run input: {json.dumps(run_input)}\n")
    root = clock.Lane(account.epoch, offset)
    sfn = boto3.client("stepfunctions", region_name=region)
    lock_table = _lock_table(cloud)
    if scenario.lock_held_by and lock_table:
        _hold_lock(cloud, lock_table, scenario.lock_held_by)
    with bridge.approver(_approver(account, scenario.approval)):
        with clock.using(root):
            execution_arn = sfn.start_execution(
                stateMachineArn=cloud.state_machine_arn, name=name, input=json.dumps(run_input)
            )["executionArn"]
        view = ProgressView(out, start)
        description = _follow(sfn, execution_arn, view, scenario.wall_timeout_seconds, scenario.abort_in)
    history = _history(sfn, execution_arn)
    view.feed(history)
    end_seconds = max(root.seconds, offset + max((view._at(e) for e in history), default=0.0))

    output = json.loads(description["output"]) if description.get("output") else None
    run_id = _run_id(output, name)
    # What follows happens when the execution has ended: statuses are read at that simulated time.
    with clock.using(clock.Lane(account.epoch, end_seconds)):
        notifications = _deliver_end_event(cloud, description, run_input, region, start, end_seconds - offset)
        artifacts = cloud.bucket("ArtifactsBucket")
        run, run_bytes, report_bytes = _run_record(s3, artifacts, run_id)
        recorded = _strings(run or {})

        def this_run(item: Any) -> bool:
            return not item.deleted and (item.created >= offset or item.arn in recorded)

        result = Result(
            status=description["status"],
            error=description.get("error"),
            cause=description.get("cause"),
            run_input=run_input,
            output=output,
            run=run,
            run_path=None,
            report_path=None,
            summary_path=None,
            jobs=[_job_view(j, offset) for j in sagemaker.jobs.values() if j.created >= offset]
            + [_customization_view(j, offset) for j in bedrock.jobs.values() if j.created >= offset],
            rejected_job_requests=list(sagemaker.rejected) + list(bedrock.rejected),
            models=[_bedrock_view(m, offset) for m in bedrock.models.values() if this_run(m)],
            deployments=[_bedrock_view(d, offset) for d in bedrock.deployments.values() if this_run(d)],
            bedrock_calls=[{"operation": op, "at": at - offset} for op, at in bedrock.calls if at >= offset],
            notifications=notifications,
            spans=_spans(sagemaker, bedrock, offset, account.inference),
            history=_jsonable(history),
            problems=[],
            simulated_seconds=end_seconds - offset,
            wall_seconds=0.0,
            definition=cloud.definition,
            definition_template=cloud.definition_template,
            substitutions=dict(cloud.substitutions),
            function_errors=[
                {"function": i.function, "error": i.error} for i in account.runtime.invocations if i.error
            ],
            ended_seconds=end_seconds,
            lock_holder_after=_lock_holder(cloud, lock_table) if lock_table else None,
            inference_calls=[
                {
                    "modelId": c.model_id,
                    "evaluates": c.evaluates,
                    "minute": round((c.at - offset) / 60, 2),
                    "correct": c.correct,
                    "error": c.error,
                }
                for c in account.inference.calls
                if c.at >= offset
            ],
        )
    result.problems = half_created(result)
    if out_dir is not None:
        _write_outputs(result, out_dir, run_bytes, report_bytes)
    return result


# -- approval ---------------------------------------------------------------------------------

APPROVALS = ("approve", "reject", "expire")
# How long the simulated reviewer takes to decide.
APPROVAL_DELAY_SECONDS = 2 * 3600


def _approver(account: _Account, approval: str | None) -> Callable[[str, int], None] | None:
    """The scenario's reviewer: writes ``approvals/<run-id>.json`` to the data bucket and delivers its upload event
    to the rule's target, as a person running ``novactl approve`` would; ``expire`` lets the token lapse."""
    from lambdas.pipeline import approval as approvals

    if approval is None:
        return None
    if approval not in APPROVALS:
        raise ValueError(f"approval {approval!r}: expected one of {', '.join(APPROVALS)}")

    def decide(token: str, timeout_seconds: int) -> None:
        if approval == "expire":
            return
        clock.advance(min(APPROVAL_DELAY_SECONDS, timeout_seconds // 2))
        run_id = _waiting_run(account, token)
        key = approvals.decision_key(run_id)
        body = {"decision": approval, "reason": f"rehearsal reviewer: {approval}"}
        account.s3.put_object(Bucket=account.data_bucket, Key=key, Body=json.dumps(body).encode())
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": OBJECT_CREATED,
            "source": "aws.s3",
            "account": account.cloud.account,
            "time": clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": account.region,
            "resources": [f"arn:aws:s3:::{account.data_bucket}"],
            "detail": {"bucket": {"name": account.data_bucket}, "object": {"key": key}},
        }
        lam = boto3.client("lambda", region_name=account.region)
        for arn in _rule_targets(account.cloud, lambda pattern: _matches_object_created(pattern, key)):
            lam.invoke(FunctionName=arn, Payload=json.dumps(event).encode())

    return decide


def _waiting_run(account: _Account, token: str) -> str:
    """The run whose stored approval token is ``token`` (``runs/<run-id>/approval-token.json``)."""
    from lambdas.pipeline import approval as approvals

    artifacts = account.cloud.bucket("ArtifactsBucket")
    pages = account.s3.get_paginator("list_objects_v2").paginate(Bucket=artifacts, Prefix="runs/")
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(f"/{approvals.TOKEN_NAME}"):
                stored = json.loads(account.s3.get_object(Bucket=artifacts, Key=item["Key"])["Body"].read())
                if stored.get("taskToken") == token:
                    return str(stored["runId"])
    raise RuntimeError("a task waits for approval but no run stored its token")


def _matches_object_created(pattern: Mapping[str, Any], key: str) -> bool:
    """An S3 Object Created rule whose key filter is a prefix of ``key``."""
    if OBJECT_CREATED not in (pattern.get("detail-type") or []):
        return False
    filters = ((pattern.get("detail") or {}).get("object") or {}).get("key") or []
    return any(isinstance(f, dict) and key.startswith(str(f.get("prefix", "\0"))) for f in filters)


# -- run lock ---------------------------------------------------------------------------------


def _lock_table(cloud: SimulatedStack) -> str | None:
    tables = cloud.of_type("AWS::DynamoDB::Table")
    return cloud.physical.get(tables[0]) if tables else None


def _hold_lock(cloud: SimulatedStack, table: str, execution_arn: str) -> None:
    pipeline = cloud.substitutions.get("PipelineName", "")
    item = {run_lock.KEY_ATTRIBUTE: {"S": pipeline}, run_lock.HOLDER_ATTRIBUTE: {"S": execution_arn}}
    cloud.client("dynamodb").put_item(TableName=table, Item=item)


def _lock_holder(cloud: SimulatedStack, table: str) -> str | None:
    return run_lock.lock_holder(cloud.client("dynamodb"), table, cloud.substitutions.get("PipelineName", ""))


# -- execution --------------------------------------------------------------------------------


def _follow(sfn: Any, execution_arn: str, view: ProgressView, timeout: float, abort_in: str | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        history = _history(sfn, execution_arn)
        view.feed(history)
        if description["status"] != "RUNNING":
            return description
        if abort_in is not None and any(
            (e.get("stateEnteredEventDetails") or {}).get("name") == abort_in for e in history
        ):
            return _stop(sfn, execution_arn, "Rehearsal.Abort", f"stopped in state {abort_in}")
        if time.monotonic() > deadline:
            cause = f"the execution ran longer than {timeout:.0f} s of wall time"
            return _stop(sfn, execution_arn, "Rehearsal.Timeout", cause)
        time.sleep(0.05)


def _stop(sfn: Any, execution_arn: str, error: str, cause: str) -> dict:
    """StopExecution, then its description once the interpreter has ended it (ABORTED), a few seconds at most."""
    sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
    deadline = time.monotonic() + 5.0
    while True:
        time.sleep(0.2)
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING" or time.monotonic() > deadline:
            return description


def _history(sfn: Any, execution_arn: str) -> list[Mapping[str, Any]]:
    """The execution's events, read from moto's backend: the API would serialize the whole history per poll."""
    _, _, _, region, account, *_ = execution_arn.split(":")
    try:
        backend = stepfunctions_parser_backends[account][region]
        return list(backend.get_execution_history(execution_arn)["events"])
    except Exception:  # noqa: BLE001 - another moto layout: the public API is always there
        events: list[Mapping[str, Any]] = []
        token = None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events


def _invoke_function(arn: str, payload: Any) -> Any:
    """Invoke a function the way the training container does (synchronously, through the Lambda API)."""
    response = boto3.client("lambda").invoke(FunctionName=arn, Payload=json.dumps(payload).encode())
    body = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise RuntimeError(f"{body.get('errorType')}: {body.get('errorMessage')}")
    return body


def _dataset_key(run_input: dict, name: str) -> str:
    """The object key of the run input's dataset ``name`` (empty when it has none)."""
    uri = (run_input.get("datasets") or {}).get(name)
    return uri[5:].partition("/")[2] if isinstance(uri, str) and uri.startswith("s3://") else ""


def _run_id(output: Any, execution_name: str) -> str:
    if isinstance(output, dict):
        for candidate in (output.get("runId"), (output.get("plan") or {}).get("runId")):
            if isinstance(candidate, str) and candidate:
                return candidate
    return execution_name


def _run_record(s3: Any, bucket: str, run_id: str) -> tuple[dict | None, bytes | None, bytes | None]:
    """runs/<run-id>/run.json and report.html; the only run folder when the id is not known."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="runs/").get("Contents", [])]
    folders = sorted({k.split("/")[1] for k in keys if k.count("/") >= 2})
    folder = run_id if run_id in folders else (folders[0] if len(folders) == 1 else None)
    if folder is None:
        return None, None, None

    def read(name: str) -> bytes | None:
        key = f"runs/{folder}/{name}"
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read() if key in keys else None

    run_bytes, report_bytes = read("run.json"), read("report.html")
    return (json.loads(run_bytes) if run_bytes else None), run_bytes, report_bytes


# -- notification -----------------------------------------------------------------------------


def _deliver_end_event(
    cloud: SimulatedStack, description: dict, run_input: dict, region: str, epoch: dt.datetime, end_seconds: float
) -> list[dict]:
    """Deliver the execution's status-change event to the rules' Lambda targets, as EventBridge would.

    Returns the messages the stack's topics received; when the template has no
    such rule yet, formats the notification with the project's formatter instead.
    """
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EXECUTION_STATUS_CHANGE,
        "source": "aws.states",
        "account": cloud.account,
        "time": (epoch + dt.timedelta(seconds=end_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [description["executionArn"]],
        "detail": {
            "executionArn": description["executionArn"],
            "stateMachineArn": description["stateMachineArn"],
            "name": description["name"],
            "status": description["status"],
            "startDate": int(epoch.timestamp() * 1000),
            "stopDate": int((epoch + dt.timedelta(seconds=end_seconds)).timestamp() * 1000),
            "input": json.dumps(run_input),
            "output": description.get("output"),
            "error": description.get("error"),
            "cause": description.get("cause"),
            "inputDetails": {"included": True},
            "outputDetails": {"included": True},
        },
    }
    targets = _rule_targets(cloud, lambda pattern: EXECUTION_STATUS_CHANGE in (pattern.get("detail-type") or []))
    lam = boto3.client("lambda", region_name=region)
    failures = []
    for arn in targets:
        response = lam.invoke(FunctionName=arn, Payload=json.dumps(event).encode())
        if response.get("FunctionError"):
            failures.append({"target": arn, "error": json.loads(response["Payload"].read())})
    messages = cloud.sent_notifications()
    for failure in failures:
        messages.append({"topic": None, "subject": "(notify function failed)", "message": json.dumps(failure)})
    if not targets:
        messages.extend(_format_locally(cloud, event))
    return messages


def _rule_targets(cloud: SimulatedStack, matches: Callable[[Mapping[str, Any]], bool]) -> list[str]:
    """The Lambda targets of the EventBridge rules whose event pattern ``matches``."""
    targets = []
    for logical_id in cloud.of_type("AWS::Events::Rule"):
        props = cloud.resources[logical_id].get("Properties", {})
        if not matches(props.get("EventPattern") or {}):
            continue
        for target in props.get("Targets", []):
            arn = target.get("Arn")
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                logical = arn["Fn::GetAtt"][0]
                if cloud.resources.get(logical, {}).get("Type") == "AWS::Lambda::Function":
                    targets.append(cloud.get_att(logical, "Arn"))
    return targets


def _format_locally(cloud: SimulatedStack, event: dict) -> list[dict]:
    try:
        from lambdas.notify.events import ExecutionStatusChange
        from lambdas.notify.message import ExecutionEnd, render_notification
        from lambdas.notify.service import reconstruct_run
        from lambdas.pipeline.schema import RunRecord
    except ImportError:
        return [{"topic": None, "subject": "(no notifier in this checkout)", "message": ""}]
    artifacts = cloud.bucket("ArtifactsBucket")
    s3 = boto3.client("s3", region_name=cloud.region)
    output = json.loads(event["detail"]["output"]) if event["detail"]["output"] else None
    run_id = _run_id(output, event["detail"]["name"])
    run, _, _ = _run_record(s3, artifacts, run_id)
    end = ExecutionEnd(
        status=event["detail"]["status"],
        execution_arn=event["detail"]["executionArn"],
        pipeline=PIPELINE,
        error=event["detail"]["error"],
        cause=event["detail"]["cause"],
    )
    if run is not None:
        record = RunRecord.model_validate(run)
    else:
        record = reconstruct_run(ExecutionStatusChange.model_validate(event), run_id=run_id, pipeline=PIPELINE)
    note = render_notification(record, end)
    return [{"topic": None, "subject": note.subject, "message": note.body, "formatted_locally": True}]


# -- checks and views -------------------------------------------------------------------------


def half_created(result: Result) -> list[str]:
    """Resources a run left behind without a trace: jobs still running, Bedrock resources being created unrecorded."""
    problems = []
    recorded = _strings(result.run or {})
    for job in result.jobs:
        if job["status"] == "InProgress":
            problems.append(f"training job {job['name']} is still InProgress")
    for kind, items in (("model", result.models), ("deployment", result.deployments)):
        for item in items:
            if item["status"] == "Creating" and item["arn"] not in recorded:
                problems.append(f"Bedrock {kind} {item['arn']} is still Creating and not in run.json")
            elif item["arn"] not in recorded:
                problems.append(f"Bedrock {kind} {item['arn']} ({item['status']}) is not recorded in run.json")
    if result.run is None:
        problems.append("no run record (runs/<run-id>/run.json) was written")
    return problems


def _strings(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _job_view(job: Any, offset: float = 0.0) -> dict:
    return {
        "service": "sagemaker",
        "name": job.name,
        "stage": job.stage,
        "kind": job.kind,
        "evaluates": job.evaluates,
        "status": job.status,
        "failure_reason": job.failure_reason,
        "checkpoint": job.checkpoint,
        "metrics": job.metrics,
        "minutes": round(job.minutes, 1),
        "start_minute": round((job.created - offset) / 60, 1),
        "hyper_parameters": job.request.get("HyperParameters", {}),
        "request": job.request,
        "grader_calls": job.grader_calls,
        "mean_reward": job.mean_reward,
    }


def _customization_view(job: Any, offset: float = 0.0) -> dict:
    """A Bedrock model customization job in the shape of :func:`_job_view` (``service`` says which)."""
    request = job.request
    rft = (request.get("customizationConfig") or {}).get("rftConfig") or {}
    return {
        "service": "bedrock",
        "name": job.name,
        "arn": job.arn,
        "stage": job.stage,
        "kind": "training",
        "evaluates": None,
        "status": job.status,
        "failure_reason": job.failure,
        "checkpoint": None,
        "custom_model_arn": job.model_arn if job.status == "Completed" else None,
        "metrics": None,
        "minutes": round(job.minutes, 1),
        "start_minute": round((job.created - offset) / 60, 1),
        "hyper_parameters": request.get("hyperParameters") or rft.get("hyperParameters") or {},
        "request": request,
        "grader_calls": job.grader_calls,
        "mean_reward": job.mean_reward,
    }


def _bedrock_view(item: Any, offset: float = 0.0) -> dict:
    return {
        "arn": item.arn,
        "name": item.name,
        "status": item.status(),
        "request": item.request,
        "failure": item.failure,
        "start_minute": round((item.created - offset) / 60, 1),
    }


_SPAN_LABELS = {("training", "sft"): "SFT", ("training", "rft"): "RFT"}


_EVALUATION_LABELS = {"baseline": "baseline eval", "sft": "SFT eval", "rft": "final eval"}


def _spans(
    sagemaker: SageMakerSimulator,
    bedrock: BedrockSimulator,
    offset: float = 0.0,
    inference: BedrockRuntimeSimulator | None = None,
) -> list[Span]:
    """The jobs, customization jobs, evaluations through Bedrock inference (first to last call of each evaluated
    model), imports, deployments and deployment moves that began at ``offset`` or later, times from there."""
    spans = []
    for customization in bedrock.jobs.values():
        label = _SPAN_LABELS[("training", customization.stage)]
        spans.append(
            Span(
                label,
                customization.stage,
                customization.created,
                customization.ends,
                customization.name,
                customization.status,
            )
        )
    calls = [c for c in (inference.calls if inference else []) if c.at >= offset and c.evaluates]
    for evaluated in dict.fromkeys(c.evaluates for c in calls):
        times = [c.at for c in calls if c.evaluates == evaluated]
        failed = any(c.error for c in calls if c.evaluates == evaluated)
        spans.append(
            Span(
                _EVALUATION_LABELS.get(evaluated, "eval"),
                "eval",
                min(times),
                max(times),
                "Converse",
                "Failed" if failed else "Completed",
            )
        )
    for job in sagemaker.jobs.values():
        label = _SPAN_LABELS.get((job.kind, job.stage)) or _EVALUATION_LABELS.get(job.evaluates or "", "eval")
        spans.append(Span(label, job.stage, job.created, job.ends, job.name, job.status))
    for model in bedrock.models.values():
        if model.customization == "IMPORTED":  # a customization job's model is its job's span
            spans.append(Span("import", "import", model.created, model.ready, model.name, model.status()))
    for deployment in bedrock.deployments.values():
        spans.append(
            Span("deploy", "deploy", deployment.created, deployment.ready, deployment.name, deployment.status())
        )
        for model_arn, began, ready in deployment.updates:
            status = "Updating" if clock.elapsed() < ready else "Active"
            spans.append(
                Span(
                    "deploy",
                    "deploy",
                    began,
                    ready,
                    f"{deployment.name} moves to {model_arn.rsplit('/', 1)[-1]}",
                    status,
                )
            )
    return [
        Span(s.label, s.kind, s.start - offset, s.end - offset, s.name, s.status) for s in spans if s.start >= offset
    ]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _merge(base: dict, extra: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = (
            _merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else copy.deepcopy(value)
        )
    return merged


class _quiet_interpreter_logs:
    """moto logs every caught state failure at ERROR; the progress view already reports them."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("moto")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


class _aws_environment:
    """Fake credentials and a region for the simulated account (restored afterwards)."""

    _VALUES = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def __enter__(self) -> None:
        self._saved = dict(os.environ)
        os.environ.update(self._VALUES)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self._saved)


# -- outputs ----------------------------------------------------------------------------------


def _write_outputs(result: Result, out_dir: Path, run_bytes: bytes | None, report_bytes: bytes | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if run_bytes is not None:
        result.run_path = out_dir / "run.json"
        result.run_path.write_bytes(run_bytes)
    if report_bytes is not None:
        result.report_path = out_dir / "report.html"
        result.report_path.write_bytes(report_bytes)
    result.summary_path = out_dir / "rehearsal.json"
    result.summary_path.write_text(
        json.dumps(
            {
                "status": result.status,
                "error": result.error,
                "cause": result.cause,
                "exitCode": result.exit_code,
                "runInput": result.run_input,
                "simulatedMinutes": round(result.simulated_seconds / 60, 1),
                "jobs": [{k: v for k, v in j.items() if k != "request"} for j in result.jobs],
                "rejectedJobRequests": result.rejected_job_requests,
                "inferenceCalls": result.inference_calls,
                "models": result.models,
                "deployments": result.deployments,
                "notifications": result.notifications,
                "timeline": [vars(s) for s in result.spans],
                "problems": result.problems,
                "functionErrors": result.function_errors,
                "substitutions": result.substitutions,
            },
            indent=2,
            default=str,
        )
    )
    (out_dir / "definition.asl.json").write_text(result.definition)
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=1))


def print_serving(results: Sequence[Result], out: TextIO) -> None:
    """What each run left serving: the deployment ARN, the model it serves and how it got there."""
    out.write("\nServing across runs (one deployment ARN: clients keep their modelId)\n")
    for index, result in enumerate(results, start=1):
        deployment = (result.run or {}).get("deployment") or {}
        if not deployment:
            out.write(f"  run {index}: {result.status}, nothing deployed\n")
            continue
        action, arn, model = deployment.get("action"), deployment.get("arn"), deployment.get("modelArn")
        out.write(f"  run {index}: {action} {arn} -> serves {model}\n")
    rolled = results[-1].rollback if results else None
    if rolled:
        out.write(
            f"  rollback: {rolled['deploymentArn']} -> serves {rolled['serves']} again (run {rolled['champion']} is "
            "the champion; a second rollback undoes it)\n"
        )


def print_summary(result: Result, out: TextIO) -> None:
    """Timeline, outcome, notification and the output paths (last)."""
    out.write("\n" + "\n".join(timeline_lines(result.spans, result.simulated_seconds)) + "\n\n")
    outcome = result.status
    if result.error:
        outcome += f" — {result.error}: {(result.cause or '')[:300]}"
    out.write(f"Execution: {outcome}\n")
    synth = f", {result.synth_seconds:.1f} s of it synthesizing the app" if result.synth_seconds else ""
    out.write(
        f"Simulated duration: {fmt_minutes(result.simulated_seconds)}; wall time {result.wall_seconds:.1f} s{synth}\n"
    )
    if result.deployment_arn:
        out.write(f"Deployed: {result.deployment_arn}\n")
    for note in result.notifications:
        out.write(
            f"\nNotification{' (formatted locally)' if note.get('formatted_locally') else ''}: {note.get('subject')}\n"
        )
        for line in (note.get("message") or "").splitlines():
            out.write(f"  | {line}\n")
    for problem in result.problems:
        out.write(f"PROBLEM: {problem}\n")
    out.write("\n")
    # The report is what a person opens next: its path is the last line.
    for label, path in (
        ("Rehearsal record", result.summary_path),
        ("Run record", result.run_path),
        ("Report", result.report_path),
    ):
        if path is not None:
            out.write(f"{label}: {path}\n")
