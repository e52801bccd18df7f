"""Evaluation through Bedrock inference (the ``"platform": "bedrock"`` road): "EvaluateOnBedrock" and what
"Read … results" reads on that road.

:func:`evaluation_request` says what an evaluation attempt evaluates: the base model through its Converse id
(``plan.bedrock.inferenceModelId``) for the baseline, the SFT custom model for ``sftEval``, the candidate (RFT's
custom model, else SFT's) for ``finalEval``; the staged evaluation dataset; the attempt's output prefix
``s3://<artifacts>/runs/<run-id>/jobs/<stage>/<job>/``; the task; Converse's inference settings from the run's
evaluation overrides (the same short keys as the SageMaker road, defaults from the model's evaluation recipe).

:func:`evaluate` is one call of the state machine's loop (Lambda, Choice on ``done``, Wait ``waitSeconds``); it
returns the progress kept at ``$.job.evaluation``:

1. ``deploying`` (candidates only): ``CreateCustomModelDeployment`` of the custom model, named after the attempt's
   job and with that name as ``clientRequestToken`` (a retried call returns the same deployment), then
   ``GetCustomModelDeployment`` every :data:`DEPLOYMENT_WAIT_S` until ``Active``; ``Failed`` raises
   :class:`DeploymentFailed` with Bedrock's ``failureMessage``. The deployment is kept afterwards (the run adopts
   it as the serving deployment or deletes it).
2. ``invoking``: ``Converse`` over the rows in order, :data:`DEFAULT_CONCURRENCY` at a time, in slices; each
   finished slice is written to ``<prefix>/outputs/part-<n>.jsonl`` and the position kept in the progress, so the
   next call goes on where this one stopped. A call stops starting slices when the function's remaining time
   falls below :data:`RESERVE_MS` plus the longest slice so far. Throttling is retried inside each call by the
   client's retry mode; a row that still fails becomes an error row (no answer: it scores 0, or the grader's
   score of an empty answer), and more than ``maxErrorRate`` of the rows failing fails the evaluation
   (:class:`EvaluationFailed`). Errors that would fail every row (access denied, model not found) fail at once.
   ``rft_eval`` rows are graded slice by slice by the run's grader Lambda, with the reward Lambda's request (the
   row with the model's answer appended as the last assistant turn), :data:`GRADER_BATCH` rollouts per call.
3. ``scoring``: the part files are read back in order and aggregated into ``<prefix>/results.json``:
   ``metrics`` and ``metricStats`` (``n``, standard error of the mean) with the names the SageMaker road's results
   have (:mod:`lambdas.pipeline.genqa` for ``gen_qa``; ``aggregate_reward_score`` and the grader's
   ``metrics_list`` names for ``rft_eval``), counts, the model and the deployment.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

from lambdas.common import layout
from lambdas.common.aws_errors import error_code
from lambdas.pipeline import genqa, naming, recipes
from lambdas.pipeline.outputs import REWARD_METRIC, EvaluationResults, RunningMean, reward_record
from lambdas.pipeline.s3uri import parse_s3_uri
from lambdas.pipeline.schema import BedrockEvaluationRequest, JobAttempt, MetricStats, Plan, StageRecords

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 32
SLICE_ROWS_PER_WORKER = 8
DEPLOYMENT_WAIT_S = 60
MAX_DEPLOYMENT_POLLS = 90  # 90 minutes of Creating
NEXT_SLICE_WAIT_S = 1
RESERVE_MS = 90_000
DEFAULT_TIMEOUT_MS = 900_000
GRADER_BATCH = 32
# A synchronous Lambda request takes 6 MB; leave room.
MAX_GRADER_PAYLOAD = 5 << 20
MAX_ERROR_RATE = 0.1
MAX_DATASET_BYTES = 256 << 20
# Calls in a row in which the next row did not answer before the call had to stop.
MAX_STALLS = 3
RESULTS_NAME = "results.json"
# Converse errors that no retry or other row can fix: the evaluation fails on the first one.
FATAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
    }
)
# Converse's inferenceConfig ranges (botocore bedrock-runtime InferenceConfiguration).
_TEMPERATURE_RANGE = (0.0, 1.0)
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}


class EvaluationFailed(RuntimeError):
    """An evaluation through Bedrock inference cannot give a result (the message says why and where)."""


class DeploymentFailed(EvaluationFailed):
    """The provisional deployment of the model under evaluation ended Failed or never became Active."""


# -- the request ---------------------------------------------------------------------------------------------


def _candidate_model(stage: str, stages: StageRecords) -> str:
    """The custom model a candidate evaluation deploys: SFT's for ``sftEval``; RFT's, else SFT's, for ``finalEval``."""
    order = ("sft",) if stage == "sftEval" else ("rft", "sft")
    for source in order:
        record = stages.of(source)
        if record.status == "SUCCEEDED" and record.customModelArn:
            return record.customModelArn
    wanted = " or ".join(f"stages.{source}.customModelArn" for source in order)
    raise EvaluationFailed(f"the {stage} evaluation has no model to evaluate: {wanted} is not set")


def inference_settings(plan: Plan) -> dict[str, Any]:
    """Converse's ``inferenceConfig`` (and ``additionalModelRequestFields``) from ``plan.jobs.eval.overrides``
    (``max_new_tokens``, ``temperature``, ``top_p``, ``top_k``, ``reasoning_effort``), each defaulting to the model's
    evaluation recipe. ``top_k`` -1 and ``reasoning_effort`` null mean unset, as in the recipe."""
    overrides = plan.jobs.eval.overrides
    template = recipes.load_template(plan.model.key, "eval")

    def value(key: str) -> Any:
        if key in overrides:
            return overrides[key]
        return template.default(key) if key in template.overrides else None

    config: dict[str, Any] = {}
    if value("max_new_tokens") is not None:
        config["maxTokens"] = int(value("max_new_tokens"))
    temperature = value("temperature")
    if temperature is not None:
        low, high = _TEMPERATURE_RANGE
        if not low <= float(temperature) <= high:
            raise EvaluationFailed(
                f"evaluation.overrides.temperature: {temperature} is outside Converse's range {low:g}-{high:g}"
            )
        config["temperature"] = float(temperature)
    if value("top_p") is not None:
        config["topP"] = float(value("top_p"))
    additional: dict[str, Any] = {}
    top_k = value("top_k")
    if top_k is not None and int(top_k) > 0:
        additional["inferenceConfig"] = {"topK": int(top_k)}
    effort = value("reasoning_effort")
    if effort:
        additional["reasoningConfig"] = {"type": "enabled", "maxReasoningEffort": str(effort)}
    settings: dict[str, Any] = {"inferenceConfig": config}
    if additional:
        settings["additionalModelRequestFields"] = additional
    return settings


def evaluation_request(stage: str, plan: Plan, stages: StageRecords, job_name: str) -> dict[str, Any]:
    """What the ``stage`` evaluation attempt ``job_name`` evaluates, on what, and how (see the module docstring)."""
    if plan.bedrock is None:
        raise EvaluationFailed("plan.bedrock is not set: the run is not on platform bedrock")
    dataset = plan.datasets.eval
    prefix = f"{layout.job_output_prefix(plan.runId, stage)}/{job_name}/"
    request = BedrockEvaluationRequest(
        task=plan.evaluation.task,
        model=plan.model.key,
        dataUri=dataset.stagedUri or dataset.uri,
        outputPrefix=layout.s3_uri(plan.artifactsBucket, prefix),
        inference=inference_settings(plan),
        concurrency=DEFAULT_CONCURRENCY,
        graderArn=plan.grader.arn if plan.grader and plan.evaluation.task == "rft_eval" else None,
        maxErrorRate=MAX_ERROR_RATE,
    )
    if stage == "baselineEval":
        request.modelId = plan.bedrock.inferenceModelId
    else:
        request.customModelArn = _candidate_model(stage, stages)
        request.deploymentName = naming.evaluation_deployment_name(job_name)
        request.clientRequestToken = request.deploymentName
    if request.task == "rft_eval" and not request.graderArn:
        raise EvaluationFailed("evaluation.task rft_eval needs the run's grader: plan.grader is not set")
    return request.to_json()


# -- Converse ------------------------------------------------------------------------------------------------


def _image_block(image: Any, where: str) -> dict[str, Any]:
    data = image.get("data") if isinstance(image, dict) else None
    header, _, payload = str(data or "").partition(",")
    kind = header.removeprefix("data:image/").removesuffix(";base64")
    if not header.startswith("data:image/") or kind.lower() not in _IMAGE_FORMATS:
        raise ValueError(f"{where}: not a data:image/<png|jpeg|gif|webp>;base64 URI")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{where}: invalid base64 ({error})") from error
    return {"image": {"format": _IMAGE_FORMATS[kind.lower()], "source": {"bytes": content}}}


def _text_of(content: Any) -> str:
    """The text of an OpenAI-style message content: a string, or the text parts of a list joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def converse_messages(task: str, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` of Converse for one row: ``gen_qa`` ``system`` + ``query`` (+ ``images``); ``rft_eval``
    the row's ``messages`` (system/developer turns become the system prompt, consecutive turns of one role are
    merged, as Converse wants roles to alternate). Raises ValueError naming what is wrong."""
    if task == "gen_qa":
        query = row.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is missing or blank")
        blocks = [_image_block(image, f"images[{i}]") for i, image in enumerate(row.get("images") or [])]
        system = [{"text": row["system"]}] if isinstance(row.get("system"), str) and row["system"] else []
        return system, [{"role": "user", "content": [*blocks, {"text": query}]}]
    system_texts: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(row.get("messages") or []):
        role = str(message.get("role", "")).lower() if isinstance(message, dict) else ""
        text = _text_of(message.get("content")) if isinstance(message, dict) else ""
        if role in ("system", "developer"):
            system_texts.append(text)
            continue
        converse_role = {"user": "user", "assistant": "assistant", "bot": "assistant", "nova_assistant": "assistant"}
        if role not in converse_role:
            raise ValueError(f"messages[{index}]: role {role or None!r} cannot be sent to Converse")
        if not text.strip():
            raise ValueError(f"messages[{index}]: no text")
        if messages and messages[-1]["role"] == converse_role[role]:
            messages[-1]["content"].append({"text": text})
        else:
            messages.append({"role": converse_role[role], "content": [{"text": text}]})
    if not messages or messages[0]["role"] != "user":
        raise ValueError("messages has no user turn before the first assistant turn")
    return [{"text": t} for t in system_texts if t], messages


def tool_config(row: dict[str, Any]) -> dict[str, Any] | None:
    """Converse's ``toolConfig`` for an ``rft_eval`` row's OpenAI-style ``tools`` (``{"type": "function",
    "function": {"name", "description", "parameters"}}``), None without tools."""
    tools = row.get("tools")
    if not tools:
        return None
    specs = []
    for index, tool in enumerate(tools if isinstance(tools, list) else [tools]):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ValueError(f"tools[{index}]: no function.name")
        name = function["name"]
        spec: dict[str, Any] = {"name": name, "inputSchema": {"json": function.get("parameters") or {"type": "object"}}}
        if isinstance(function.get("description"), str) and function["description"]:
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    return {"tools": specs}


def converse_request(request: BedrockEvaluationRequest, model_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """The Converse request of one row (``modelId`` the base model's id or the deployment ARN)."""
    system, messages = converse_messages(request.task, row)
    call: dict[str, Any] = {"modelId": model_id, "messages": messages, **request.inference}
    if system:
        call["system"] = system
    tools = tool_config(row) if request.task == "rft_eval" else None
    if tools:
        call["toolConfig"] = tools
    return call


def _content(response: dict[str, Any]) -> list[Any]:
    content = ((response.get("output") or {}).get("message") or {}).get("content") or []
    return [block for block in content if isinstance(block, dict)]


def answer_text(response: dict[str, Any]) -> str:
    """The answer of a Converse response: its text blocks joined (reasoning blocks are not the answer)."""
    return "".join(str(block["text"]) for block in _content(response) if "text" in block)


def tool_uses(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``toolUse`` blocks of a Converse response (a tool call the model made)."""
    return [{"toolUse": block["toolUse"]} for block in _content(response) if "toolUse" in block]


# -- progress ------------------------------------------------------------------------------------------------


# Every field of the progress: the state machine keeps exactly these at ``$.job.evaluation`` between calls, so a
# field missing here would be lost before the next call (stepfunctions.pipeline selects them).
PROGRESS_FIELDS = (
    "job",
    "done",
    "waitSeconds",
    "phase",
    "deploymentArn",
    "modelId",
    "processed",
    "total",
    "errors",
    "parts",
    "polls",
    "stalls",
    "resultsUri",
)


def _initial(request: BedrockEvaluationRequest, job_name: str | None) -> dict[str, Any]:
    return {
        "job": job_name,
        "done": False,
        "waitSeconds": 0,
        "phase": "deploying" if request.customModelArn else "invoking",
        "deploymentArn": None,
        "modelId": request.modelId,
        "processed": 0,
        "total": 0,
        "errors": 0,
        "parts": 0,
        "polls": 0,
        "stalls": 0,
        "resultsUri": None,
    }


@dataclass
class Clients:
    """The AWS clients an evaluation uses: ``bedrock`` (deployments), ``runtime`` (Converse), ``lambda_``
    (the grader), ``s3``."""

    s3: Any
    bedrock: Any
    runtime: Any
    lambda_: Any


def _deploy(request: BedrockEvaluationRequest, progress: dict[str, Any], plan: Plan, bedrock: Any) -> bool:
    """Create or check the provisional deployment; True once it is Active (``progress`` updated)."""
    name = request.deploymentName or ""
    if not progress["deploymentArn"]:
        tags = {"nova:pipeline": plan.pipelineName, "nova:run-id": plan.runId, "nova:purpose": "evaluation"}
        response = bedrock.create_custom_model_deployment(
            modelDeploymentName=name,
            modelArn=request.customModelArn,
            description=f"Evaluation of {request.customModelArn} by pipeline {plan.pipelineName}, run {plan.runId}",
            tags=[{"key": k, "value": v} for k, v in tags.items()],
            clientRequestToken=request.clientRequestToken,
        )
        progress["deploymentArn"] = str(response["customModelDeploymentArn"])
    described = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=progress["deploymentArn"])
    status = str(described.get("status", "Creating"))
    if status == "Active":
        progress.update(modelId=progress["deploymentArn"], phase="invoking")
        return True
    if status == "Failed":
        reason = described.get("failureMessage") or "no failureMessage returned"
        raise DeploymentFailed(
            f"deployment {name} ({progress['deploymentArn']}) of {request.customModelArn} failed: {reason}"
        )
    progress["polls"] += 1
    if progress["polls"] > MAX_DEPLOYMENT_POLLS:
        raise DeploymentFailed(
            f"deployment {name} ({progress['deploymentArn']}) of {request.customModelArn} is still {status} after "
            f"{MAX_DEPLOYMENT_POLLS} checks {DEPLOYMENT_WAIT_S} s apart"
        )
    progress.update(waitSeconds=DEPLOYMENT_WAIT_S)
    return False


# -- rows ----------------------------------------------------------------------------------------------------


def _read_rows(s3: Any, uri: str) -> list[bytes]:
    """The non-blank lines of the evaluation dataset, in order."""
    bucket, key = parse_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        data: bytes = body.read(MAX_DATASET_BYTES + 1)
    finally:
        body.close()
    if len(data) > MAX_DATASET_BYTES:
        raise EvaluationFailed(f"the evaluation dataset {uri} is larger than {MAX_DATASET_BYTES} bytes")
    return [line for line in data.splitlines() if line.strip()]


def _invoke_row(
    request: BedrockEvaluationRequest, model_id: str, runtime: Any, index: int, line: bytes, uri: str
) -> dict[str, Any]:
    """One row's output record: ``index``, ``id``, ``answer`` or ``error``, ``usage``; the row itself for grading."""
    record: dict[str, Any] = {"index": index, "answer": None, "error": None}
    try:
        row = json.loads(line)
        if not isinstance(row, dict):
            raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        record["id"] = row.get("id")
        call = converse_request(request, model_id, row)
    except ValueError as error:
        record["error"] = f"{uri}, row {index + 1}: {error}"
        return record
    record["row"] = row
    try:
        response = runtime.converse(**call)
    except Exception as error:
        code = error_code(error)
        if code in FATAL_CODES:
            raise EvaluationFailed(f"Converse on {model_id} failed ({code}): {error}") from error
        record["error"] = f"row {index + 1}: {code or type(error).__name__}: {error}"
        return record
    record["answer"] = answer_text(response)
    calls = tool_uses(response)
    if calls:
        record["toolUses"] = calls
    record["stopReason"] = response.get("stopReason")
    usage = response.get("usage") or {}
    record["usage"] = {k: usage[k] for k in ("inputTokens", "outputTokens") if k in usage}
    return record


def _score_gen_qa(record: dict[str, Any]) -> None:
    row = record.pop("row", None) or {}
    reference = str(row.get("response", ""))
    answer = record["answer"] or ""
    record["reference"] = reference
    record["scores"] = genqa.row_scores(reference, answer)
    record["bleu"] = genqa.bleu_statistics(reference, answer)


def _rollout(record: dict[str, Any]) -> dict[str, Any]:
    """The reward Lambda's item for one row: the row, its messages followed by the model's answer (a list of
    Converse parts, its text and ``toolUse`` blocks, when the model called tools)."""
    row = dict(record.get("row") or {"id": record.get("id"), "messages": []})
    messages = list(row.get("messages") or [])
    answer: Any = record["answer"] or ""
    if record.get("toolUses"):
        answer = [*([{"text": answer}] if answer else []), *record["toolUses"]]
    row["messages"] = [*messages, {"role": "assistant", "content": answer}]
    return row


def _batches(records: list[dict[str, Any]]) -> Iterator[tuple[list[dict[str, Any]], bytes]]:
    """The records in grader calls of at most :data:`GRADER_BATCH` rollouts and :data:`MAX_GRADER_PAYLOAD` bytes,
    each with its request payload."""
    batch: list[dict[str, Any]] = []
    encoded: list[bytes] = []
    for record in records:
        item = json.dumps(_rollout(record)).encode()
        if len(item) + 2 > MAX_GRADER_PAYLOAD:
            raise EvaluationFailed(
                f"row {record['index'] + 1}: its rollout is {len(item)} bytes, more than a grader call takes "
                f"({MAX_GRADER_PAYLOAD} bytes)"
            )
        if batch and (
            len(batch) == GRADER_BATCH or sum(map(len, encoded)) + 2 * len(encoded) + len(item) + 2 > MAX_GRADER_PAYLOAD
        ):
            yield batch, b"[" + b", ".join(encoded) + b"]"
            batch, encoded = [], []
        batch.append(record)
        encoded.append(item)
    if batch:
        yield batch, b"[" + b", ".join(encoded) + b"]"


def _grade(records: list[dict[str, Any]], grader_arn: str, lambda_client: Any) -> None:
    """Grade the records' rollouts with the grader Lambda (:func:`_batches`); each record gets ``reward`` (the
    grader's item)."""
    for batch, request_payload in _batches(records):
        response = lambda_client.invoke(
            FunctionName=grader_arn, InvocationType="RequestResponse", Payload=request_payload
        )
        payload = response["Payload"].read()
        where = f"grader {grader_arn}, rows {batch[0]['index'] + 1}-{batch[-1]['index'] + 1}"
        if response.get("FunctionError"):
            raise EvaluationFailed(f"{where}: the function failed: {payload[:500].decode(errors='replace')}")
        try:
            items = json.loads(payload)
        except ValueError as error:
            raise EvaluationFailed(f"{where}: the response is not JSON ({error})") from error
        if not isinstance(items, list) or len(items) != len(batch):
            count = len(items) if isinstance(items, list) else type(items).__name__
            raise EvaluationFailed(f"{where}: expected a list of {len(batch)} results, got {count}")
        for record, item in zip(batch, items, strict=True):
            problem = reward_record(item)
            if isinstance(problem, str):
                raise EvaluationFailed(f"{where}, row {record['index'] + 1}: {problem}")
            record["reward"] = item


def _remaining(context: Any, started: float) -> Callable[[], int]:
    get = getattr(context, "get_remaining_time_in_millis", None)
    if callable(get):
        return lambda: int(get())
    return lambda: DEFAULT_TIMEOUT_MS - int((time.monotonic() - started) * 1000)


def _slice(
    request: BedrockEvaluationRequest,
    progress: dict[str, Any],
    lines: list[bytes],
    clients: Clients,
    pool: ThreadPoolExecutor,
    remaining: Callable[[], int],
) -> list[dict[str, Any]]:
    """Invoke the next slice of rows; the records of its longest finished prefix (in row order)."""
    start = progress["processed"]
    size = request.concurrency * SLICE_ROWS_PER_WORKER
    futures: list[Future[dict[str, Any]]] = [
        pool.submit(_invoke_row, request, progress["modelId"], clients.runtime, i, lines[i], request.dataUri)
        for i in range(start, min(start + size, len(lines)))
    ]
    deadline_s = max((remaining() - RESERVE_MS // 2) / 1000, 0)
    wait(futures, timeout=deadline_s, return_when=FIRST_EXCEPTION)
    records: list[dict[str, Any]] = []
    for future in futures:
        if not future.done():
            break
        records.append(future.result())  # re-raises EvaluationFailed of a fatal error
    for future in futures[len(records) :]:
        future.cancel()
    return records


def _write_part(s3: Any, request: BedrockEvaluationRequest, number: int, records: list[dict[str, Any]]) -> None:
    bucket, prefix = parse_s3_uri(request.outputPrefix)
    body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}outputs/part-{number:05d}.jsonl",
        Body=body.encode("utf-8"),
        ContentType="application/x-ndjson",
    )


def _too_many_errors(request: BedrockEvaluationRequest, errors: int, total: int, stage: str, first: str) -> None:
    if total and errors > request.maxErrorRate * total:
        raise EvaluationFailed(
            f"{errors} of {total} rows of the {stage} evaluation of {request.customModelArn or request.modelId} "
            f"failed (more than {request.maxErrorRate:.0%}); first error: {first}"
        )


def _stalled(request: BedrockEvaluationRequest, progress: dict[str, Any], stage: str) -> None:
    """A call whose first row did not answer in time: the next call tries again, :data:`MAX_STALLS` calls in all."""
    progress["stalls"] = progress.get("stalls", 0) + 1
    if progress["stalls"] >= MAX_STALLS:
        raise EvaluationFailed(
            f"row {progress['processed'] + 1} of {request.dataUri} got no answer from "
            f"{progress['modelId']} in {MAX_STALLS} calls of the {stage} evaluation in a row"
        )


def _invoke(
    stage: str,
    request: BedrockEvaluationRequest,
    progress: dict[str, Any],
    clients: Clients,
    remaining: Callable[[], int],
) -> bool:
    """Invoke slices until every row is done (True) or the time is short (False)."""
    lines = _read_rows(clients.s3, request.dataUri)
    progress["total"] = len(lines)
    longest_ms = 0
    workers = min(max(request.concurrency, 1), MAX_CONCURRENCY)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="converse")
    try:
        while progress["processed"] < len(lines):
            if remaining() < RESERVE_MS + longest_ms:
                break
            began = time.monotonic()
            records = _slice(request, progress, lines, clients, pool, remaining)
            if not records:
                _stalled(request, progress, stage)
                break
            progress["stalls"] = 0
            if request.task == "rft_eval":
                _grade(records, request.graderArn or "", clients.lambda_)
            else:
                for record in records:
                    _score_gen_qa(record)
            for record in records:
                record.pop("row", None)
            _write_part(clients.s3, request, progress["parts"], records)
            failed = [r["error"] for r in records if r["error"]]
            progress["parts"] += 1
            progress["processed"] += len(records)
            progress["errors"] += len(failed)
            if failed:
                _too_many_errors(request, progress["errors"], len(lines), stage, failed[0])
            longest_ms = max(longest_ms, int((time.monotonic() - began) * 1000))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return bool(progress["processed"] >= len(lines))


# -- scoring -------------------------------------------------------------------------------------------------


def _part_records(s3: Any, request: BedrockEvaluationRequest, parts: int) -> Iterator[dict[str, Any]]:
    bucket, prefix = parse_s3_uri(request.outputPrefix)
    for number in range(parts):
        key = f"{prefix}outputs/part-{number:05d}.jsonl"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for line in body.iter_lines():
                if line.strip():
                    yield json.loads(line)
        finally:
            body.close()


@dataclass
class Counts:
    """What the rows came to: rows, error rows, answers cut by ``maxTokens`` (``stopReason`` ``max_tokens``), and
    the tokens Converse reported (what the evaluation's inference is billed on)."""

    rows: int = 0
    errors: int = 0
    truncated: int = 0
    inputTokens: int = 0
    outputTokens: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.rows += 1
        self.errors += 1 if record.get("error") else 0
        self.truncated += 1 if record.get("stopReason") == "max_tokens" else 0
        usage = record.get("usage") or {}
        self.inputTokens += int(usage.get("inputTokens") or 0)
        self.outputTokens += int(usage.get("outputTokens") or 0)


def score(
    request: BedrockEvaluationRequest, records: Iterator[dict[str, Any]]
) -> tuple[EvaluationResults, Counts, str | None]:
    """Aggregate the output records: the results, the counts, the first error."""
    means: dict[str, RunningMean] = {}
    bleu: list[list[int]] = []
    counts = Counts()
    first: str | None = None
    for record in records:
        counts.add(record)
        if record.get("error"):
            first = first or str(record["error"])
        if request.task == "rft_eval":
            reward = record["reward"]
            means.setdefault(REWARD_METRIC, RunningMean()).add(float(reward["aggregate_reward_score"]))
            for entry in reward.get("metrics_list") or []:
                means.setdefault(str(entry["name"]).strip(), RunningMean()).add(float(entry["value"]))
        else:
            for name, value in record["scores"].items():
                means.setdefault(name, RunningMean()).add(float(value))
            bleu.append(record["bleu"])
    metrics = {name: mean.mean for name, mean in means.items()}
    stats = {name: mean.stats() for name, mean in means.items()}
    if request.task == "gen_qa" and counts.rows:
        metrics[genqa.BLEU] = genqa.corpus_bleu(bleu)
        stats[genqa.BLEU] = MetricStats(n=counts.rows, stderr=None)
    return EvaluationResults(metrics=metrics, stats=stats), counts, first


def _finish(stage: str, request: BedrockEvaluationRequest, progress: dict[str, Any], s3: Any) -> None:
    results, counts, first = score(request, _part_records(s3, request, progress["parts"]))
    if counts.rows != progress["total"]:
        raise EvaluationFailed(
            f"the outputs under {request.outputPrefix}outputs/ hold {counts.rows} rows, the dataset {progress['total']}"
        )
    if not counts.rows:
        raise EvaluationFailed(f"the evaluation dataset {request.dataUri} has no rows")
    _too_many_errors(request, counts.errors, counts.rows, stage, first or "")
    bucket, prefix = parse_s3_uri(request.outputPrefix)
    document = {
        "stage": stage,
        "task": request.task,
        "model": request.customModelArn or request.modelId,
        "modelId": progress["modelId"],
        "deploymentArn": progress["deploymentArn"],
        "metrics": results.metrics,
        "metricStats": {name: stat.to_json() for name, stat in results.stats.items()},
        "counts": asdict(counts),
        "inference": request.inference,
        "outputs": f"{request.outputPrefix}outputs/",
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}{RESULTS_NAME}",
        Body=json.dumps(document, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    progress.update(phase="done", done=True, waitSeconds=0, resultsUri=f"{request.outputPrefix}{RESULTS_NAME}")


def evaluate(stage: str, plan: Plan, job: JobAttempt, *, clients: Clients, context: Any = None) -> dict[str, Any]:
    """One call of the evaluation loop: the progress to keep at ``$.job.evaluation`` (module docstring)."""
    request = job.request
    if not isinstance(request, BedrockEvaluationRequest):
        raise EvaluationFailed(f"job {job.name or stage} has no Bedrock evaluation request (job.request)")
    remaining = _remaining(context, time.monotonic())
    # Progress is this attempt's only: an attempt never resumes another's rows or deployment.
    mine = job.evaluation is not None and job.evaluation.get("job") == job.name
    progress = dict(job.evaluation) if mine and job.evaluation else _initial(request, job.name)
    progress.update(done=False, waitSeconds=NEXT_SLICE_WAIT_S)
    if progress["phase"] == "deploying" and not _deploy(request, progress, plan, clients.bedrock):
        return progress
    if progress["phase"] == "invoking":
        if not _invoke(stage, request, progress, clients, remaining):
            return progress
        progress["phase"] = "scoring"
    if progress["phase"] == "scoring":
        _finish(stage, request, progress, clients.s3)
    return progress


# -- reading the results -------------------------------------------------------------------------------------


def read_results(s3: Any, results_uri: str, job_name: str) -> tuple[EvaluationResults, dict[str, Any]]:
    """The metrics of ``results.json`` and the document (for its deployment and outputs)."""
    bucket, key = parse_s3_uri(results_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as error:
        raise EvaluationFailed(f"evaluation {job_name} wrote no results at {results_uri}: {error}") from error
    try:
        document = json.loads(body.read())
    except ValueError as error:
        raise EvaluationFailed(f"{results_uri} of evaluation {job_name} is not valid JSON: {error}") from error
    finally:
        body.close()
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict) or not metrics:
        raise EvaluationFailed(f"{results_uri} of evaluation {job_name} holds no metrics")
    stats = {name: MetricStats.model_validate(value) for name, value in (document.get("metricStats") or {}).items()}
    return EvaluationResults(metrics={k: float(v) for k, v in metrics.items()}, stats=stats), document
