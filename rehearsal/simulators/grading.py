"""What the simulated trainers and models share: simulated answers, the grader call and the reward contract.

A simulated model of exact match ``q`` answers row ``i`` of a dataset correctly when
``frac(i x golden ratio) < q`` (:func:`answers_correctly`): deterministic per row, and
over n rows the share of correct answers is as close to ``q`` as n allows, on every prefix.
A correct answer is the row's reference (:func:`reference_text`), a wrong one
:data:`WRONG_ANSWER`. :func:`rollout` turns a dataset row and an answer into the item a
trainer sends the grader (the row, an ``id``, the assistant turn appended), and
:func:`grade` calls the grader and holds its answer to the reward contract
(docs/contracts/reward-lambda.md); :class:`JobFailure` is what a simulated job ends with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

GOLDEN = 0.6180339887498949
WRONG_ANSWER = "I am not sure."


class JobFailure(Exception):
    """Why a simulated job failed: its ``FailureReason`` / ``failureMessage``."""


def answers_correctly(index: int, quality: float) -> bool:
    """Whether a model of exact match ``quality`` answers row ``index`` of a dataset correctly."""
    return (index * GOLDEN) % 1.0 < quality


def reference_text(sample: dict) -> str:
    """The row's expected answer as text: ``reference_answer`` (top level, else in ``metadata``; an object's
    first value), else a gen_qa row's ``response``."""
    reference = sample.get("reference_answer", (sample.get("metadata") or {}).get("reference_answer"))
    if isinstance(reference, dict):
        return str(next(iter(reference.values()), ""))
    return str(reference if reference is not None else sample.get("response", ""))


def rollout(sample: dict, index: int, *, correct: bool) -> dict:
    """A grader request item: the sample with a simulated model answer (the reference, or a wrong one)."""
    answer = reference_text(sample) if correct else WRONG_ANSWER
    messages = list(sample.get("messages") or [{"role": "user", "content": sample.get("query", "")}])
    item = {k: v for k, v in sample.items() if k != "messages"}
    item["id"] = str(sample.get("id", f"sample-{index}"))
    item["messages"] = [*messages, {"role": "assistant", "content": answer}]
    return item


def grade(invoke_lambda: Callable[[str, list], Any], lambda_arn: str, batch: list[dict]) -> list[dict]:
    """One grader call; a failed call or a response that breaks the reward contract raises :class:`JobFailure`."""
    if not batch:
        raise JobFailure("ClientError: the training channel holds no samples")
    try:
        answer = invoke_lambda(lambda_arn, batch)
    except Exception as error:
        raise JobFailure(f"AlgorithmError: reward function {lambda_arn} failed: {error}") from error
    problems = reward_contract_problems(batch, answer)
    if problems:
        raise JobFailure("AlgorithmError: reward function response breaks the contract: " + "; ".join(problems))
    return list(answer)


def mean_reward(scored: list[dict]) -> float:
    return round(sum(item["aggregate_reward_score"] for item in scored) / len(scored), 4)


def reward_contract_problems(batch: list[dict], answer: Any) -> list[str]:
    """Why a grader response breaks the RFT reward contract: a bare list, one finite score per request id."""
    if not isinstance(answer, list):
        return [f"expected a bare JSON list, got {type(answer).__name__}"]
    problems = []
    if len(answer) != len(batch):
        problems.append(f"{len(answer)} results for {len(batch)} samples")
    ids = {item["id"] for item in batch}
    for item in answer:
        if not isinstance(item, dict):
            problems.append(f"result {item!r} is not an object")
            continue
        if item.get("id") not in ids:
            problems.append(f"result id {item.get('id')!r} is not a request id")
        score = item.get("aggregate_reward_score")
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            problems.append(f"result {item.get('id')!r}: aggregate_reward_score {score!r} is not a finite number")
    return problems


def read_rows(s3: Any, uri: str) -> list[dict]:
    """Every JSON Lines row of the objects under ``uri`` (one file or a prefix), in key order."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    rows: list[dict] = []
    for key in keys:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return rows
