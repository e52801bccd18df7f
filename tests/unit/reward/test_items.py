"""Request-item parsing (docs/contracts/reward-lambda.md) and the engine's per-item guarantees."""

from __future__ import annotations

import json
import math

import pytest

from lambdas.reward.engine import coerce_event, compile_spec
from lambdas.reward.items import reference_of
from lambdas.reward.spec import MISSING

from .support import item, metrics_of, sample_of

LABEL_SPEC = {"type": "label", "labels": ["HQ", "LQ_EDIT", "LQ_CLOSE"], "correct": 1, "incorrect": -1}


def test_reference_is_read_at_top_level_before_metadata():
    # Given a reference at both places
    both = {"reference_answer": "HQ", "metadata": {"reference_answer": "LQ_EDIT"}}
    # Then the top level wins, and metadata is the fallback
    assert reference_of(both) == "HQ"
    assert reference_of({"metadata": {"reference_answer": "LQ_EDIT"}}) == "LQ_EDIT"
    assert reference_of({"metadata": "not an object"}) is MISSING
    assert reference_of({"reference_answer": None}) is MISSING


@pytest.mark.parametrize(
    "content, expected",
    [
        ("HQ", "HQ"),
        ([{"type": "text", "text": "HQ"}], "HQ"),
        ([{"text": "HQ"}], "HQ"),
        ([{"type": "reasoning", "text": "thinking LQ_EDIT"}, {"type": "text", "text": "HQ"}], "HQ"),
        ([{"text": "first"}, {"text": "second"}], "first\nsecond"),
        ([], ""),
    ],
)
def test_content_may_be_a_string_or_a_list_of_text_parts(content, expected):
    sample = sample_of(item(content, "HQ"), needs_reference=True)
    assert sample.response == expected


def test_the_last_assistant_message_is_graded_and_nova_assistant_counts():
    # Given a conversation with two assistant turns, the last one with the nova_assistant role
    event_item = {
        "id": "x",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "LQ_EDIT"},
            {"role": "user", "content": "are you sure?"},
            {"role": "nova_assistant", "content": "HQ"},
        ],
        "reference_answer": "HQ",
    }
    # Then the last assistant turn is the graded text
    assert sample_of(event_item, True).response == "HQ"


def test_openai_tool_calls_and_converse_tool_use_become_tool_call_json():
    openai = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ]
    }
    converse = {
        "messages": [{"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}]
    }
    assert json.loads(sample_of(openai).response)["tool_calls"][0]["function"]["name"] == "f"
    assert json.loads(sample_of(converse).response)["tool_calls"][0]["name"] == "f"


@pytest.mark.parametrize(
    "bad_item, reason",
    [
        ("a string", "not_an_object"),
        (None, "not_an_object"),
        ({"id": "1"}, "no_messages"),
        ({"id": "1", "messages": []}, "no_messages"),
        ({"id": "1", "messages": "HQ"}, "no_messages"),
        ({"id": "1", "messages": [{"role": "user", "content": "q"}], "reference_answer": "HQ"}, "no_assistant_turn"),
        ({"id": "1", "messages": ["HQ", 3]}, "no_assistant_turn"),
        ({"id": "1", "messages": [{"role": "assistant", "content": 42}], "reference_answer": "HQ"}, "bad_content"),
        (
            {"id": "1", "messages": [{"role": "assistant", "content": [{"text": 1}]}], "reference_answer": "HQ"},
            "bad_content",
        ),
        ({"id": "1", "messages": [{"role": "assistant"}], "reference_answer": "HQ"}, "bad_content"),
        ({"id": "1", "messages": [{"role": "assistant", "content": "HQ"}]}, "missing_reference"),
        (
            {"id": "1", "messages": [{"role": "assistant", "content": "HQ"}], "reference_answer": "MAYBE"},
            "bad_reference",
        ),
    ],
)
def test_malformed_items_get_the_minimum_score_and_a_named_metric(bad_item, reason):
    # Given a label grader (range [-1, 1]) and a batch with one malformed item between two good ones
    reward = compile_spec(LABEL_SPEC)
    batch = [item("HQ", "HQ", item_id="good-1"), bad_item, item("LQ_EDIT", "LQ_EDIT", item_id="good-2")]
    # When the batch is graded
    results = reward(batch)
    # Then the malformed item scores the minimum with a metric naming the problem, and the others are unaffected
    assert [r["aggregate_reward_score"] for r in results] == [1.0, -1.0, 1.0]
    assert metrics_of(results[1]) == {f"malformed:{reason}": 1.0}
    assert results[1]["id"] == (bad_item.get("id") if isinstance(bad_item, dict) else None)


def test_ids_are_echoed_verbatim_and_none_when_absent():
    reward = compile_spec(LABEL_SPEC)
    no_id = item("HQ", "HQ")
    del no_id["id"]
    results = reward([item("HQ", "HQ", item_id=7), item("HQ", "HQ", item_id="abc"), no_id])
    assert [r["id"] for r in results] == [7, "abc", None]


def test_a_grader_bug_on_one_item_is_reported_without_failing_the_batch(monkeypatch):
    # Given a grader that raises on one specific response
    reward = compile_spec(LABEL_SPEC)
    original = type(reward.grader).grade

    def flaky(self, sample):
        if sample.response == "boom":
            raise ZeroDivisionError("bug")
        return original(self, sample)

    monkeypatch.setattr(type(reward.grader), "grade", flaky)
    # When a batch containing it is graded
    results, summary = reward.grade_batch_with_summary([item("HQ", "HQ"), item("boom", "HQ")])
    # Then only that item gets the minimum and a grader_error metric
    assert results[0]["aggregate_reward_score"] == 1.0
    assert results[1]["aggregate_reward_score"] == -1.0
    assert metrics_of(results[1]) == {"grader_error:ZeroDivisionError": 1.0}
    assert summary.grader_errors == ["ZeroDivisionError: bug"]


def test_out_of_range_scores_are_clamped_and_non_finite_scores_reported(monkeypatch):
    # Given a (buggy) grader returning scores outside its declared [0, 1] range, and NaN
    reward = compile_spec({"type": "text_similarity"})
    scores = {"high": 5.0, "low": -3.0, "nan": math.nan, "inf": math.inf}
    monkeypatch.setattr(type(reward.grader), "grade", lambda self, sample: (scores[sample.response], []))
    # When graded
    results = reward([item(text, "ref") for text in scores])
    # Then scores are clamped into the range and non-finite ones are reported as grader errors
    assert [r["aggregate_reward_score"] for r in results] == [1.0, 0.0, 0.0, 0.0]
    assert metrics_of(results[2]) == {"grader_error:NonFiniteScore": 1.0}
    assert metrics_of(results[3]) == {"grader_error:NonFiniteScore": 1.0}


def test_summary_counts_scores_and_malformed_items():
    reward = compile_spec(LABEL_SPEC)
    _, summary = reward.grade_batch_with_summary([item("HQ", "HQ"), item("LQ_EDIT", "HQ"), "junk", {"messages": []}])
    assert (summary.count, summary.graded, summary.malformed) == (4, 2, 2)
    assert summary.malformed_reasons == {"not_an_object": 1, "no_messages": 1}
    assert (summary.minimum, summary.maximum, summary.mean) == (-1.0, 1.0, -0.5)


@pytest.mark.parametrize(
    "event, expected",
    [
        ([{"id": 1}], [{"id": 1}]),
        ({"id": 1, "messages": []}, [{"id": 1, "messages": []}]),
        ({"body": json.dumps([{"id": 1}])}, [{"id": 1}]),
        ({"body": [{"id": 1}]}, [{"id": 1}]),
        ({"items": [{"id": 1}]}, [{"id": 1}]),
        ({"samples": [{"id": 1}]}, [{"id": 1}]),
        (json.dumps([{"id": 1}]), [{"id": 1}]),
        ("not json", None),
        (None, None),
        (42, None),
        ({"body": "garbage"}, None),
    ],
)
def test_events_that_are_not_bare_lists_are_unwrapped_or_rejected(event, expected):
    assert coerce_event(event) == expected
