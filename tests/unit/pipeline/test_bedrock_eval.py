"""Evaluation through Bedrock inference: the request, the deployment, resumable Converse, gen_qa metrics, rft_eval
through the grader, and ReadEvaluation on that road. Every stubbed request is checked against botocore's model."""

from __future__ import annotations

import importlib
import io
import json
import math
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.pipeline import bedrock_eval, genqa, naming
from lambdas.pipeline.schema import BedrockEvaluationRequest, BedrockPlan, JobAttempt, Plan, StageRecords
from offline.lambda_context import FakeLambdaContext
from offline.shapes import request_problems
from tests.unit.pipeline import samples

REGION = "us-east-1"
SFT_MODEL = f"arn:aws:bedrock:{REGION}:{samples.ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/abcdefgh1234"
RFT_MODEL = f"arn:aws:bedrock:{REGION}:{samples.ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/rftmodel5678"
DEPLOYMENT = f"arn:aws:bedrock:{REGION}:{samples.ACCOUNT}:custom-model-deployment/a1b2c3d4e5f6"
BASE_ID = "us.amazon.nova-2-lite-v1:0"


# -- fixtures ------------------------------------------------------------------------------------------------


def bedrock_plan(**input_changes: Any) -> Plan:
    plan = samples.plan(**input_changes)
    return plan.model_copy(
        update={
            "platform": "bedrock",
            "bedrock": BedrockPlan(baseModelIdentifier="amazon.nova-2-lite-v1:0:256k", inferenceModelId=BASE_ID),
        }
    )


def trained_stages(*, rft: bool = True) -> StageRecords:
    records: dict[str, Any] = {name: {"status": "PENDING"} for name in ("baselineEval", "sftEval", "finalEval")}
    records["sft"] = {"status": "SUCCEEDED", "customModelArn": SFT_MODEL}
    records["rft"] = {"status": "SUCCEEDED", "customModelArn": RFT_MODEL} if rft else {"status": "SKIPPED"}
    return StageRecords.model_validate(records)


def prepared(
    s3: Any, stage: str, rows: list[dict], **plan_changes: Any
) -> tuple[Plan, JobAttempt, BedrockEvaluationRequest]:
    """A plan on bedrock whose evaluation dataset holds ``rows``, and the first attempt of ``stage``."""
    plan = bedrock_plan(**plan_changes)
    put_eval_rows(s3, plan, rows)
    job = job_for(stage, plan, trained_stages())
    assert isinstance(job.request, BedrockEvaluationRequest)
    return plan, job, job.request


def job_for(stage: str, plan: Plan, stages: StageRecords, *, concurrency: int = 1, **changes: Any) -> JobAttempt:
    name = naming.training_job_name(plan.pipelineName, plan.runId, stage, 1)
    request = bedrock_eval.evaluation_request(stage, plan, stages, name)
    request.update(concurrency=concurrency, **changes)
    return JobAttempt.model_validate({"stage": stage, "name": name, "attempt": 1, "request": request})


class Context:
    """A Lambda context whose remaining time follows a script (then stays at the last value)."""

    def __init__(self, *remaining_ms: int) -> None:
        self.values = list(remaining_ms)

    def get_remaining_time_in_millis(self) -> int:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def checked(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    problems = request_problems(service, operation, params)
    assert problems == [], problems
    return params


def converse_reply(text: str) -> dict[str, Any]:
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"reasoningContent": {"reasoningText": {"text": "[REDACTED]"}}}, {"text": text}],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12},
        "metrics": {"latencyMs": 5},
    }


def put_eval_rows(s3: Any, plan: Plan, rows: list[dict]) -> None:
    from lambdas.pipeline.s3uri import parse_s3_uri

    bucket, key = parse_s3_uri(plan.datasets.eval.stagedUri or plan.datasets.eval.uri)
    s3.put_object(Bucket=bucket, Key=key, Body=samples.jsonl(rows))


def read_json(s3: Any, uri: str) -> Any:
    from lambdas.pipeline.s3uri import parse_s3_uri

    bucket, key = parse_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def clients(s3: Any) -> Any:
    bedrock = boto3.client("bedrock", region_name=REGION)
    runtime = boto3.client("bedrock-runtime", region_name=REGION)
    lambda_ = boto3.client("lambda", region_name=REGION)
    stubs = {
        name: Stubber(client) for name, client in (("bedrock", bedrock), ("runtime", runtime), ("lambda", lambda_))
    }
    for stub in stubs.values():
        stub.activate()
    yield bedrock_eval.Clients(s3=s3, bedrock=bedrock, runtime=runtime, lambda_=lambda_), stubs
    for stub in stubs.values():
        stub.deactivate()


def expect_converse(stub: Stubber, model_id: str, row: dict, answer: str, inference: dict) -> None:
    params = {
        "modelId": model_id,
        "messages": [{"role": "user", "content": [{"text": row["query"]}]}],
        "system": [{"text": row["system"]}],
        **inference,
    }
    stub.add_response("converse", converse_reply(answer), checked("bedrock-runtime", "Converse", params))


# -- the request ---------------------------------------------------------------------------------------------


def test_the_baseline_invokes_the_base_model_and_candidates_their_custom_models() -> None:
    plan, stages = bedrock_plan(), trained_stages()
    baseline = bedrock_eval.evaluation_request("baselineEval", plan, stages, "nova-run-1-eval-base-a1")
    assert baseline["modelId"] == BASE_ID and baseline["customModelArn"] is None
    assert (
        baseline["outputPrefix"]
        == f"s3://{samples.ARTIFACTS_BUCKET}/runs/{plan.runId}/jobs/baselineEval/nova-run-1-eval-base-a1/"
    )
    assert bedrock_eval.evaluation_request("sftEval", plan, stages, "j-a1")["customModelArn"] == SFT_MODEL
    final = bedrock_eval.evaluation_request("finalEval", plan, stages, "nova-r-eval-final-a2")
    assert final["customModelArn"] == RFT_MODEL
    assert final["deploymentName"] == final["clientRequestToken"] == "nova-r-eval-final-a2"
    no_rft = bedrock_eval.evaluation_request("finalEval", plan, trained_stages(rft=False), "j-a1")
    assert no_rft["customModelArn"] == SFT_MODEL


def test_a_candidate_without_a_custom_model_is_refused_naming_the_field() -> None:
    stages = StageRecords.model_validate(
        {name: {"status": "PENDING"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    )
    with pytest.raises(bedrock_eval.EvaluationFailed, match=r"stages\.sft\.customModelArn"):
        bedrock_eval.evaluation_request("sftEval", bedrock_plan(), stages, "j-a1")


def test_inference_settings_come_from_the_overrides_with_the_recipe_defaults() -> None:
    default = bedrock_eval.inference_settings(bedrock_plan())
    # nova-2-lite eval recipe: max_new_tokens 32768, temperature 0, top_p 1.0, top_k -1 (unset), no reasoning.
    assert default == {"inferenceConfig": {"maxTokens": 32768, "temperature": 0.0, "topP": 1.0}}
    overrides = {"max_new_tokens": 512, "top_k": 20, "reasoning_effort": "low", "temperature": 0.5}
    tuned = bedrock_eval.inference_settings(bedrock_plan(evaluation={"overrides": overrides}))
    assert tuned["inferenceConfig"] == {"maxTokens": 512, "temperature": 0.5, "topP": 1.0}
    assert tuned["additionalModelRequestFields"] == {
        "inferenceConfig": {"topK": 20},
        "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"},
    }
    with pytest.raises(bedrock_eval.EvaluationFailed, match=r"evaluation\.overrides\.temperature: 1\.5"):
        bedrock_eval.inference_settings(bedrock_plan(evaluation={"overrides": {"temperature": 1.5}}))


def test_converse_requests_of_both_tasks_are_valid_for_botocore() -> None:
    request = BedrockEvaluationRequest.model_validate(
        bedrock_eval.evaluation_request("sftEval", bedrock_plan(), trained_stages(), "j-a1")
    )
    image = {"data": "data:image/png;base64," + "aGVsbG8="}
    gen_qa = bedrock_eval.converse_request(request, DEPLOYMENT, {"query": "Q?", "response": "A", "images": [image]})
    assert gen_qa["messages"][0]["content"][0] == {"image": {"format": "png", "source": {"bytes": b"hello"}}}
    assert request_problems("bedrock-runtime", "Converse", gen_qa) == []
    rft = request.model_copy(update={"task": "rft_eval"})
    row = samples.rft_rows(1)[0]
    call = bedrock_eval.converse_request(rft, DEPLOYMENT, row)
    assert call["system"] == [{"text": samples.SYSTEM}]
    assert call["messages"] == [{"role": "user", "content": [{"text": row["messages"][1]["content"]}]}]
    assert request_problems("bedrock-runtime", "Converse", call) == []
    with pytest.raises(ValueError, match=r"messages\[0\]: role 'tool'"):
        bedrock_eval.converse_messages("rft_eval", {"messages": [{"role": "tool", "content": "x"}]})


# -- the loop ------------------------------------------------------------------------------------------------


def test_a_candidate_is_deployed_then_invoked_across_calls_then_scored(clients: Any) -> None:
    aws, stubs = clients
    rows = samples.eval_rows(12)
    plan, job, request = prepared(aws.s3, "sftEval", rows)
    create = {
        "modelDeploymentName": job.name,
        "modelArn": SFT_MODEL,
        "description": f"Evaluation of {SFT_MODEL} by pipeline {plan.pipelineName}, run {plan.runId}",
        "tags": [
            {"key": "nova:pipeline", "value": plan.pipelineName},
            {"key": "nova:run-id", "value": plan.runId},
            {"key": "nova:purpose", "value": "evaluation"},
        ],
        "clientRequestToken": job.name,
    }
    get = checked("bedrock", "GetCustomModelDeployment", {"customModelDeploymentIdentifier": DEPLOYMENT})
    stubs["bedrock"].add_response(
        "create_custom_model_deployment",
        {"customModelDeploymentArn": DEPLOYMENT},
        checked("bedrock", "CreateCustomModelDeployment", create),
    )
    stubs["bedrock"].add_response("get_custom_model_deployment", {"status": "Creating"} | _described(), get)
    first = bedrock_eval.evaluate("sftEval", plan, job, clients=aws, context=Context(800_000))
    assert first | {} == first and first["done"] is False
    assert (first["phase"], first["waitSeconds"], first["deploymentArn"]) == ("deploying", 60, DEPLOYMENT)

    # Active: the first slice (8 rows at concurrency 1), then too little time is left for another.
    stubs["bedrock"].add_response("get_custom_model_deployment", {"status": "Active"} | _described(), get)
    answers = [row["response"] if i % 2 == 0 else "wrong" for i, row in enumerate(rows)]
    for row, answer in zip(rows[:8], answers[:8], strict=True):
        expect_converse(stubs["runtime"], DEPLOYMENT, row, answer, request.inference)
    job = job.model_copy(update={"evaluation": first})
    second = bedrock_eval.evaluate("sftEval", plan, job, clients=aws, context=Context(800_000, 800_000, 1_000))
    assert (second["phase"], second["done"], second["processed"], second["total"]) == ("invoking", False, 8, 12)
    assert second["modelId"] == DEPLOYMENT and second["waitSeconds"] == bedrock_eval.NEXT_SLICE_WAIT_S

    for row, answer in zip(rows[8:], answers[8:], strict=True):
        expect_converse(stubs["runtime"], DEPLOYMENT, row, answer, request.inference)
    job = job.model_copy(update={"evaluation": second})
    third = bedrock_eval.evaluate("sftEval", plan, job, clients=aws, context=Context(800_000))
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert (third["phase"], third["done"], third["processed"]) == ("done", True, 12)
    results = read_json(aws.s3, third["resultsUri"])
    assert results["metrics"]["exact_match"] == pytest.approx(0.5)
    assert results["metricStats"]["exact_match"]["n"] == 12
    # 6 ones and 6 zeros: sample standard deviation sqrt(12 * 0.25 / 11), over sqrt(12).
    assert math.isclose(results["metricStats"]["exact_match"]["stderr"], math.sqrt(3 / 11) / math.sqrt(12))
    assert set(results["metrics"]) == {*genqa.ROW_METRICS, "bleu"}
    assert results["deploymentArn"] == DEPLOYMENT
    # converse_reply reports 10 input and 2 output tokens and stops at the end of its turn.
    assert results["counts"] == {"rows": 12, "errors": 0, "truncated": 0, "inputTokens": 120, "outputTokens": 24}
    part = aws.s3.get_object(
        Bucket=samples.ARTIFACTS_BUCKET, Key=_key(request.outputPrefix + "outputs/part-00001.jsonl")
    )
    lines = [json.loads(line) for line in part["Body"].read().splitlines()]
    assert [line["index"] for line in lines] == [8, 9, 10, 11]
    assert lines[1]["answer"] == "wrong" and lines[1]["scores"]["exact_match"] == 0.0


def _described() -> dict[str, Any]:
    return {
        "customModelDeploymentArn": DEPLOYMENT,
        "modelDeploymentName": "d",
        "modelArn": SFT_MODEL,
        "createdAt": "2026-01-01T00:00:00Z",
    }


def _key(uri: str) -> str:
    return uri.split("/", 3)[3]


def test_a_failed_deployment_names_it_and_bedrocks_message(clients: Any) -> None:
    aws, stubs = clients
    plan, stages = bedrock_plan(), trained_stages()
    job = job_for("finalEval", plan, stages)
    assert isinstance(job.request, BedrockEvaluationRequest)
    started = {**bedrock_eval._initial(job.request, job.name), "deploymentArn": DEPLOYMENT}
    job = job.model_copy(update={"evaluation": started})
    stubs["bedrock"].add_response(
        "get_custom_model_deployment",
        {"status": "Failed", "failureMessage": "model not supported for on-demand"} | _described(),
        {"customModelDeploymentIdentifier": DEPLOYMENT},
    )
    with pytest.raises(bedrock_eval.DeploymentFailed) as failure:
        bedrock_eval.evaluate("finalEval", plan, job, clients=aws, context=Context(800_000))
    assert str(failure.value) == (
        f"deployment {job.name} ({DEPLOYMENT}) of {RFT_MODEL} failed: model not supported for on-demand"
    )


def test_throttled_rows_become_error_rows_and_too_many_fail_the_evaluation(clients: Any) -> None:
    aws, stubs = clients
    rows = samples.eval_rows(10)
    plan, job, request = prepared(aws.s3, "baselineEval", rows)
    expect_converse(stubs["runtime"], BASE_ID, rows[0], rows[0]["response"], request.inference)
    stubs["runtime"].add_client_error("converse", "ThrottlingException", "Too many requests", 429)
    for row in rows[2:]:
        expect_converse(stubs["runtime"], BASE_ID, row, row["response"], request.inference)
    done = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    assert done["done"] is True and done["errors"] == 1 and done["deploymentArn"] is None
    results = read_json(aws.s3, done["resultsUri"])
    # The throttled row has no answer and scores 0: 9 of 10 exact.
    assert results["metrics"]["exact_match"] == pytest.approx(0.9)
    assert (results["counts"]["rows"], results["counts"]["errors"], results["counts"]["outputTokens"]) == (10, 1, 18)

    # Two throttled rows of ten is more than 10%: the evaluation fails, naming the counts and the first error.
    stubs["runtime"].add_client_error("converse", "ThrottlingException", "Too many requests", 429)
    stubs["runtime"].add_client_error("converse", "ThrottlingException", "Too many requests", 429)
    for row in rows[2:8]:
        expect_converse(stubs["runtime"], BASE_ID, row, row["response"], request.inference)
    with pytest.raises(
        bedrock_eval.EvaluationFailed, match=r"2 of 10 rows of the baselineEval evaluation .*Throttling"
    ):
        bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))


def test_access_denied_fails_the_evaluation_at_once(clients: Any) -> None:
    aws, stubs = clients
    plan = bedrock_plan()
    put_eval_rows(aws.s3, plan, samples.eval_rows(5))
    job = job_for("baselineEval", plan, trained_stages())
    stubs["runtime"].add_client_error("converse", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(bedrock_eval.EvaluationFailed, match=rf"Converse on {BASE_ID} failed \(AccessDeniedException\)"):
        bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))


def test_rft_eval_rows_are_graded_by_the_grader_lambda(clients: Any) -> None:
    aws, stubs = clients
    plan = bedrock_plan(evaluation={"task": "rft_eval"}, gate={"metric": "aggregate_reward_score"})
    rows = samples.rft_rows(3)
    put_eval_rows(aws.s3, plan, [{k: v for k, v in row.items()} for row in rows])
    job = job_for("baselineEval", plan, trained_stages())
    for row in rows:
        stubs["runtime"].add_response("converse", converse_reply(row["reference_answer"]))
    rollouts = [
        {**row, "messages": [*row["messages"], {"role": "assistant", "content": row["reference_answer"]}]}
        for row in rows
    ]
    graded = [
        {
            "id": row["id"],
            "aggregate_reward_score": score,
            "metrics_list": [{"name": "answer", "value": score, "type": "Reward"}],
        }
        for row, score in zip(rows, (1.0, 0.0, 1.0), strict=True)
    ]
    payload = json.dumps(graded).encode()
    invoke = {
        "FunctionName": samples.GRADER_ARN,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(rollouts).encode(),
    }
    assert request_problems("lambda", "Invoke", invoke) == []
    stubs["lambda"].add_response(
        "invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}, invoke
    )
    done = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    results = read_json(aws.s3, done["resultsUri"])
    assert results["metrics"] == {"aggregate_reward_score": pytest.approx(2 / 3), "answer": pytest.approx(2 / 3)}
    assert results["metricStats"]["aggregate_reward_score"]["n"] == 3


def test_a_grader_answering_the_wrong_number_of_results_fails_naming_the_rows(clients: Any) -> None:
    aws, stubs = clients
    plan = bedrock_plan(evaluation={"task": "rft_eval"}, gate={"metric": "aggregate_reward_score"})
    put_eval_rows(aws.s3, plan, samples.rft_rows(2))
    job = job_for("baselineEval", plan, trained_stages())
    for _ in range(2):
        stubs["runtime"].add_response("converse", converse_reply("HQ"))
    payload = b"[]"
    stubs["lambda"].add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), 2)})
    with pytest.raises(bedrock_eval.EvaluationFailed, match=r"rows 1-2: expected a list of 2 results, got 0"):
        bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))


# -- ReadEvaluation ------------------------------------------------------------------------------------------


def test_read_evaluation_on_bedrock_records_the_metrics_deployment_and_outputs(s3: Any, pipeline_env: dict) -> None:
    handlers = importlib.import_module("lambdas.pipeline.handlers")
    handlers.environment.cache_clear()
    handlers.client.cache_clear()
    plan, stages = bedrock_plan(), trained_stages()
    job = job_for("sftEval", plan, stages)
    request = job.request
    assert isinstance(request, BedrockEvaluationRequest)
    results_uri = request.outputPrefix + "results.json"
    document = {
        "metrics": {"exact_match": 0.75, "bleu": 40.0},
        "metricStats": {"exact_match": {"n": 4, "stderr": 0.25}, "bleu": {"n": 4, "stderr": None}},
        "deploymentArn": DEPLOYMENT,
    }
    s3.put_object(Bucket=samples.ARTIFACTS_BUCKET, Key=_key(results_uri), Body=json.dumps(document).encode())
    progress = {"done": True, "phase": "done", "resultsUri": results_uri, "deploymentArn": DEPLOYMENT}
    event = {
        "stage": "sftEval",
        "job": job.model_copy(update={"evaluation": progress}).to_json(),
        "stages": stages.to_json(),
    }
    try:
        updated = handlers.read_evaluation(event, FakeLambdaContext("pipeline-test"))
    finally:
        handlers.client.cache_clear()
    record = updated["sftEval"]
    assert record["status"] == "SUCCEEDED" and record["metrics"] == {"exact_match": 0.75, "bleu": 40.0}
    assert record["metricStats"]["exact_match"] == {"n": 4, "stderr": 0.25}
    assert record["deploymentArn"] == DEPLOYMENT and record["outputUri"] == request.outputPrefix
    assert record["jobName"] == job.name and record["instanceType"] is None


# -- gen_qa metric definitions (hand-checked values) ---------------------------------------------------------


def test_exact_and_quasi_exact_match() -> None:
    assert genqa.exact_match("Paris", " Paris \n") == 1.0
    assert genqa.exact_match("Paris", "paris") == 0.0
    assert genqa.exact_match("Paris", "") == 0.0
    assert genqa.quasi_exact_match("Paris", "The paris!") == 1.0
    # Numbers are read as numbers after punctuation is removed: "1" is "1.0", and "1.0" becomes "10.0".
    assert genqa.normalize("1") == "1.0" and genqa.normalize("1.0") == "10.0"
    assert genqa.quasi_exact_match("1.0", "10") == 1.0
    assert genqa.normalize("The 3 cats-and-dogs.") == "3.0 cats and dogs"


def test_token_f1_is_over_sets_of_whitespace_tokens() -> None:
    assert genqa.token_f1("a b c", "a b d") == pytest.approx(2 / 3)
    # Sets: the repeated "a" counts once on each side.
    assert genqa.token_f1("a a b", "a") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert genqa.token_f1("x", "y") == 0.0 and genqa.token_f1("x", "") == 0.0
    assert genqa.row_scores("The Cat", "cat")["f1_score_quasi"] == 1.0
    assert genqa.row_scores("The Cat", "cat")["f1_score"] == 0.0


def test_rouge_scores() -> None:
    # reference 3 tokens, answer 4, all 3 shared: P 3/4, R 1 -> F 6/7.
    assert genqa.rouge_n("the cat sat", "The cat sat down.", 1) == pytest.approx(6 / 7)
    # bigrams: 2 of the answer's 3 are in the reference: P 2/3, R 1 -> F 0.8.
    assert genqa.rouge_n("the cat sat", "the cat sat down", 2) == pytest.approx(0.8)
    # LCS "the sat" (2): P 2/3, R 2/3.
    assert genqa.rouge_l("the cat sat", "the sat cat") == pytest.approx(2 / 3)
    assert genqa.rouge_tokens("Héllo, WORLD-42") == ["h", "llo", "world", "42"]
    assert genqa.rouge_l("", "x") == 0.0


def test_bleu_follows_sacrebleu_defaults() -> None:
    assert genqa.bleu_tokens("Hello, world.") == ["Hello", ",", "world", "."]
    assert genqa.bleu_tokens("costs $3.50-4") == ["costs", "$", "3.50", "-", "4"]
    same = genqa.bleu_statistics("the cat sat on the mat", "the cat sat on the mat")
    assert genqa.corpus_bleu([same]) == pytest.approx(100.0)
    # All n-gram precisions 100, answer 4 tokens for a 5-token reference: BP exp(1 - 5/4).
    short = genqa.bleu_statistics("the quick brown fox jumps", "the quick brown fox")
    assert short == [4, 5, 4, 3, 2, 1, 4, 3, 2, 1]
    assert genqa.corpus_bleu([short]) == pytest.approx(100 * math.exp(-0.25))
    # 1-grams 4/5, 2-grams 2/4, 3-grams 0/3 -> 100/(2*3), 4-grams 0/2 -> 100/(4*2) (exp smoothing).
    smoothed = genqa.bleu_statistics("a b c d e", "a b x d e")
    expected = (80 * 50 * (100 / 6) * 12.5) ** 0.25
    assert genqa.corpus_bleu([smoothed]) == pytest.approx(expected)
    # Corpus level: statistics are summed before the score, not scores averaged.
    assert genqa.corpus_bleu([same, short]) == pytest.approx(
        math.exp(1 - 11 / 10) * 100 * ((10 / 10) * (8 / 8) * (6 / 6) * (4 / 4)) ** 0.25
    )
    assert genqa.corpus_bleu([genqa.bleu_statistics("a b", "c d")]) == 0.0


class SlowRuntime:
    """A thread-safe Converse that answers each query with its reference, slowly for the queries in ``slow``;
    every request is checked against botocore's model."""

    def __init__(self, rows: list[dict], slow: set[int], delay_s: float) -> None:
        self.answers = {row["query"]: row["response"] for row in rows}
        self.slow = {rows[i]["query"] for i in slow}
        self.delay_s = delay_s

    def converse(self, **params: Any) -> dict[str, Any]:
        import time

        checked("bedrock-runtime", "Converse", params)
        query = params["messages"][0]["content"][-1]["text"]
        if query in self.slow:
            time.sleep(self.delay_s)
        return converse_reply(self.answers[query])


def test_concurrent_rows_keep_their_order_and_a_call_near_its_deadline_keeps_only_the_finished_prefix(
    s3: Any,
) -> None:
    rows = samples.eval_rows(12)
    plan, job, request = prepared(s3, "baselineEval", rows)
    job = job.model_copy(update={"request": request.model_copy(update={"concurrency": 4})})
    runtime = SlowRuntime(rows, slow={2}, delay_s=1.0)
    aws = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=runtime, lambda_=None)
    # Time for one slice to start, but its rows must finish within 0.2 s: the slow row 3 and those after it wait.
    near = bedrock_eval.RESERVE_MS // 2 + 200
    first = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000, near, 1_000))
    assert (first["processed"], first["parts"], first["done"]) == (2, 1, False)
    runtime.slow = set()
    job = job.model_copy(update={"evaluation": first})
    done = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    assert done["done"] is True and done["processed"] == 12
    indexes = []
    for number in range(done["parts"]):
        body = s3.get_object(
            Bucket=samples.ARTIFACTS_BUCKET, Key=_key(f"{request.outputPrefix}outputs/part-{number:05d}.jsonl")
        )
        indexes += [json.loads(line)["index"] for line in body["Body"].read().splitlines()]
    assert indexes == list(range(12))
    assert read_json(s3, done["resultsUri"])["metrics"]["exact_match"] == pytest.approx(1.0)


def test_an_attempt_never_resumes_the_progress_of_another_attempt(s3: Any) -> None:
    rows = samples.eval_rows(5)
    plan, job, request = prepared(s3, "baselineEval", rows)
    earlier = {
        **bedrock_eval._initial(request, "nova-run-eval-base-a1"),
        "phase": "scoring",
        "processed": 5,
        "parts": 9,
    }
    job = job.model_copy(update={"name": "nova-run-eval-base-a2", "evaluation": earlier})
    aws = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=SlowRuntime(rows, set(), 0), lambda_=None)
    done = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    assert (done["job"], done["processed"], done["parts"], done["done"]) == ("nova-run-eval-base-a2", 5, 1, True)


def test_the_state_machine_keeps_every_field_of_the_progress_between_calls(s3: Any) -> None:
    # Given the progress after one call, when the definition's selection keeps what it lists, then nothing the next
    # call resumes from is lost
    from stepfunctions.pipeline import definition

    rows = samples.eval_rows(3)
    plan, job, request = prepared(s3, "baselineEval", rows)
    aws = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=SlowRuntime(rows, set(), 0), lambda_=None)
    progress = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    selectors = [
        state["ResultSelector"]
        for state in definition()["States"].values()
        if state.get("ResultPath") == "$.job.evaluation" and "ResultSelector" in state
    ]
    for branch in (s for st in definition()["States"].values() for s in st.get("Branches", [])):
        selectors += [
            state["ResultSelector"]
            for state in branch["States"].values()
            if state.get("ResultPath") == "$.job.evaluation" and "ResultSelector" in state
        ]
    assert selectors
    for selector in selectors:
        assert {key.removesuffix(".$") for key in selector} == set(progress)


def test_the_bit_parallel_longest_common_subsequence_equals_the_dynamic_programme() -> None:
    import random

    def table(first: list[str], second: list[str]) -> int:
        previous = [0] * (len(second) + 1)
        for token in first:
            current = [0]
            for j, other in enumerate(second, start=1):
                current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
            previous = current
        return previous[-1]

    chance = random.Random(7)
    for _ in range(500):
        first = [chance.choice("abcd") for _ in range(chance.randint(0, 25))]
        second = [chance.choice("abcde") for _ in range(chance.randint(0, 25))]
        assert genqa._lcs_length(first, second) == table(first, second), (first, second)


def test_the_handler_returns_the_progress_as_json(s3: Any, pipeline_env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    handlers = importlib.import_module("lambdas.pipeline.handlers")
    rows = samples.eval_rows(6)
    plan, job, _ = prepared(s3, "baselineEval", rows)
    clients = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=SlowRuntime(rows, set(), 0), lambda_=None)
    monkeypatch.setattr(handlers, "_evaluation_clients", lambda: clients)
    event = {"stage": "baselineEval", "plan": plan.to_json(), "job": job.to_json()}
    progress = handlers.evaluate_on_bedrock(event, FakeLambdaContext("pipeline-test", timeout_seconds=900))
    assert json.loads(json.dumps(progress)) == progress
    assert progress["done"] is True and progress["resultsUri"].endswith(f"/{job.name}/results.json")


class RecordingGrader:
    """A grader Lambda that scores 1 when the answer calls a tool, and keeps what it was sent."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []

    def invoke(self, **params: Any) -> dict[str, Any]:
        checked("lambda", "Invoke", params)
        batch = json.loads(params["Payload"])
        self.batches.append(batch)
        results = []
        for item in batch:
            content = item["messages"][-1]["content"]
            called = isinstance(content, list) and any("toolUse" in part for part in content)
            results.append({"id": item["id"], "aggregate_reward_score": 1.0 if called else 0.0})
        payload = json.dumps(results).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload))}


class ToolRuntime:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def converse(self, **params: Any) -> dict[str, Any]:
        self.calls.append(checked("bedrock-runtime", "Converse", params))
        use = {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}
        return {"output": {"message": {"role": "assistant", "content": [{"text": "Looking."}, {"toolUse": use}]}}}


def test_rft_eval_rows_with_tools_send_a_tool_config_and_grade_the_tool_calls(s3: Any) -> None:
    tools = [
        {"type": "function", "function": {"name": "lookup", "description": "Find", "parameters": {"type": "object"}}}
    ]
    rows = [{**row, "tools": tools} for row in samples.rft_rows(2)]
    plan, job, _ = prepared(s3, "baselineEval", rows, evaluation={"task": "rft_eval"}, gate={"metric": "x"})
    runtime, grader = ToolRuntime(), RecordingGrader()
    aws = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=runtime, lambda_=grader)
    done = bedrock_eval.evaluate("baselineEval", plan, job, clients=aws, context=Context(800_000))
    spec = {"name": "lookup", "inputSchema": {"json": {"type": "object"}}, "description": "Find"}
    assert runtime.calls[0]["toolConfig"] == {"tools": [{"toolSpec": spec}]}
    answer = grader.batches[0][0]["messages"][-1]
    assert answer == {
        "role": "assistant",
        "content": [{"text": "Looking."}, {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}}],
    }
    assert read_json(s3, done["resultsUri"])["metrics"] == {"aggregate_reward_score": 1.0}


def test_the_tuned_converse_request_is_valid_for_botocore() -> None:
    plan = bedrock_plan(evaluation={"overrides": {"top_k": 5, "reasoning_effort": "high", "max_new_tokens": 64}})
    request = BedrockEvaluationRequest.model_validate(
        bedrock_eval.evaluation_request("baselineEval", plan, trained_stages(), "j-a1")
    )
    call = bedrock_eval.converse_request(request, BASE_ID, samples.eval_rows(1)[0])
    assert call["additionalModelRequestFields"]["reasoningConfig"]["maxReasoningEffort"] == "high"
    assert request_problems("bedrock-runtime", "Converse", call) == []


def test_request_checks_accept_any_json_in_document_members_and_still_check_the_others() -> None:
    call = {
        "modelId": BASE_ID,
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "additionalModelRequestFields": {"inferenceConfig": {"topK": 5}, "anything": [1, None]},
        "inferenceConfig": {"topK": 5},
    }
    assert request_problems("bedrock-runtime", "Converse", call) == [
        "params.inferenceConfig.topK: not a member of InferenceConfiguration "
        "(members: maxTokens, temperature, topP, stopSequences)"
    ]


def test_a_row_that_never_answers_in_time_fails_the_evaluation_after_three_calls(s3: Any) -> None:
    rows = samples.eval_rows(3)
    plan, job, _ = prepared(s3, "baselineEval", rows)
    aws = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=SlowRuntime(rows, {0}, 0.3), lambda_=None)
    near = bedrock_eval.RESERVE_MS // 2 + 50  # each call may wait 50 ms for its slice

    def call(progress: dict | None) -> dict:
        attempt = job.model_copy(update={"evaluation": progress})
        return bedrock_eval.evaluate("baselineEval", plan, attempt, clients=aws, context=Context(800_000, near, 1_000))

    first = call(None)
    assert (first["processed"], first["stalls"], first["done"]) == (0, 1, False)
    second = call(first)
    assert second["stalls"] == 2
    with pytest.raises(bedrock_eval.EvaluationFailed, match=rf"row 1 of .* got no answer from {BASE_ID} in 3 calls"):
        call(second)


def test_reading_missing_or_empty_results_names_the_file(s3: Any) -> None:
    uri = f"s3://{samples.ARTIFACTS_BUCKET}/runs/r/jobs/sftEval/j-a1/results.json"
    with pytest.raises(bedrock_eval.EvaluationFailed, match=rf"evaluation j-a1 wrote no results at {uri}"):
        bedrock_eval.read_results(s3, uri, "j-a1")
    s3.put_object(Bucket=samples.ARTIFACTS_BUCKET, Key=_key(uri), Body=b'{"metrics": {}}')
    with pytest.raises(bedrock_eval.EvaluationFailed, match=rf"{uri} of evaluation j-a1 holds no metrics"):
        bedrock_eval.read_results(s3, uri, "j-a1")


def test_grader_calls_stay_under_the_payload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        {"index": i, "answer": "x" * 100, "row": {"id": i, "messages": [{"role": "user", "content": "q"}]}}
        for i in range(10)
    ]
    one = len(json.dumps(bedrock_eval._rollout(records[0])).encode())
    monkeypatch.setattr(bedrock_eval, "MAX_GRADER_PAYLOAD", 3 * one + 10)
    batches = list(bedrock_eval._batches(records))
    assert [len(batch) for batch, _ in batches] == [3, 3, 3, 1]
    for batch, payload in batches:
        assert len(payload) <= 3 * one + 10
        assert json.loads(payload) == [bedrock_eval._rollout(r) for r in batch]
    monkeypatch.setattr(bedrock_eval, "MAX_GRADER_PAYLOAD", one)
    with pytest.raises(bedrock_eval.EvaluationFailed, match=rf"row 1: its rollout is {one} bytes"):
        list(bedrock_eval._batches(records))


def test_counts_tell_error_rows_cut_answers_and_tokens_apart() -> None:
    counts = bedrock_eval.Counts()
    counts.add({"error": None, "stopReason": "max_tokens", "usage": {"inputTokens": 7, "outputTokens": 64}})
    counts.add({"error": "row 2: ThrottlingException: slow down"})
    counts.add({"error": None, "stopReason": "end_turn", "usage": {"inputTokens": 3}})
    assert counts == bedrock_eval.Counts(rows=3, errors=1, truncated=1, inputTokens=10, outputTokens=64)
