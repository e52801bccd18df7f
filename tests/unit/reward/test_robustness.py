"""No event the Lambda runtime can deliver makes the reward handler raise, and grading stays linear."""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import sys
import time

import pytest

from lambdas.reward.config import reward_function
from lambdas.reward.graders import numeric
from lambdas.reward.presets import list_graders
from offline.malformed import malformed_event

from .conftest import CONTEXT
from .support import item, sample_of

# Bounded in time: a fixed number of batches per grader (about a second each), and a wall-clock cap.
BATCHES_PER_GRADER = 250
TIME_CAP_S = 60.0


@pytest.fixture(scope="module")
def handlers():
    """The handler module loaded once per grader name (presets and custom modules)."""
    loaded = {}
    previous = {key: os.environ.pop(key, None) for key in ("GRADER_SPEC", "GRADER_PRESET")}
    try:
        for name in list_graders():
            os.environ["GRADER_PRESET"] = name
            sys.modules.pop("lambdas.reward.handler", None)
            loaded[name] = importlib.import_module("lambdas.reward.handler")
    finally:
        os.environ.pop("GRADER_PRESET", None)
        os.environ.update({key: value for key, value in previous.items() if value is not None})
        sys.modules.pop("lambdas.reward.handler", None)
    return loaded


def test_random_json_in_every_field_never_makes_the_handler_raise(handlers) -> None:
    started = time.monotonic()
    for name, handler in handlers.items():
        low, high = handler.reward.score_range
        rng = random.Random(f"robustness-{name}")
        for _ in range(BATCHES_PER_GRADER):
            event = malformed_event(rng)
            results = handler.lambda_handler(event, CONTEXT)  # must not raise
            assert isinstance(results, list)
            if isinstance(event, list):
                assert len(results) == len(event)
                assert [r["id"] for r in results] == [e.get("id") if isinstance(e, dict) else None for e in event]
            for result in results:
                assert low <= result["aggregate_reward_score"] <= high
                assert all(
                    math.isfinite(m["value"]) and m["type"] in ("Reward", "Metric") for m in result["metrics_list"]
                )
            json.dumps(results, allow_nan=False)
        assert time.monotonic() - started < TIME_CAP_S


@pytest.mark.parametrize("role", [["assistant"], {"name": "assistant"}, 7, None, True])
def test_a_role_of_any_json_type_is_not_an_error_and_does_not_fail_the_batch(role) -> None:
    reward = reward_function(preset="classification")
    odd = {"id": "odd", "messages": [{"role": role, "content": "HQ"}], "reference_answer": "HQ"}
    results = reward([odd, item("HQ", "HQ", item_id="fine")])
    assert results[0]["metrics_list"] == [{"name": "malformed:no_assistant_turn", "value": 1.0, "type": "Metric"}]
    assert results[1]["aggregate_reward_score"] == 1.0


def test_tool_calls_beside_text_are_kept_in_openai_and_converse_turns() -> None:
    call = {"name": "search_case_law", "arguments": {"query": "tenancy"}}
    openai = item("I will search first.", item_id="o")
    openai["messages"][-1]["tool_calls"] = [{"type": "function", "function": call}]
    converse = item([{"text": "I will search first."}, {"toolUse": {"toolUseId": "t1", **call}}], item_id="c")
    for raw in (openai, converse):
        graded = json.loads(sample_of(raw).response)
        assert graded["content"] == "I will search first."
        assert len(graded["tool_calls"]) == 1
    # And the tool-calling preset grades those calls, as it does a turn without text
    reward = reward_function(preset="tool-calling")
    bare = item(json.dumps({"tool_calls": [call]}), item_id="b")
    reference = {"tool_calls": [call]}
    for raw in (openai, converse, bare):
        raw["reference_answer"] = reference
    scores = [r["aggregate_reward_score"] for r in reward([openai, converse, bare])]
    assert scores[0] == scores[1] == scores[2] == 1.0


@pytest.mark.parametrize("piece", ["ANSWER: 1 ", "#### 1 ", "\\boxed{", "\\boxed{1}", "answer: ", "Answer: yes "])
def test_marked_answers_read_each_character_once_so_grading_is_linear(piece, monkeypatch) -> None:
    # Count the characters the numeric grader parses as answer segments: never more than the text holds
    parsed: list[int] = []
    original = numeric.marked_segments

    def counting(text, markers):
        for segment, boxed in original(text, markers):
            parsed.append(len(segment))
            yield segment, boxed

    monkeypatch.setattr(numeric, "marked_segments", counting)
    reward = reward_function(preset="numeric")
    for size in (6_000, 24_000):
        parsed.clear()
        text = (piece * (size // len(piece) + 1))[:size]
        for reference in ("1", "yes"):
            result = reward([item(text, reference)])[0]
            assert math.isfinite(result["aggregate_reward_score"])
        assert 0 < sum(parsed) <= 2 * size  # two references: each reading parses the text at most once
