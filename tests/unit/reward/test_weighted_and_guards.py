"""Weighted composition and the length/format guards any spec can carry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.spec import SpecError

from .support import grade_one, item, metrics_of, score

CALL = {"name": "get_statute", "arguments": {"code": "Penal Code", "section": "187"}}
WEIGHTED: dict[str, Any] = {
    "type": "weighted",
    "graders": {
        "tool": {"weight": 0.7, "grader": {"type": "tool_call"}},
        "shape": {
            "weight": 0.3,
            "grader": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "required": ["tool_calls"],
                    "properties": {"tool_calls": {"type": "array"}},
                    "additionalProperties": False,
                },
            },
        },
    },
}


def test_weighted_sum_with_every_sub_score_in_the_metrics():
    # Given a response with the right call plus an extra top-level key the schema forbids
    response = json.dumps({"tool_calls": [CALL], "note": "x"})
    result = grade_one(compile_spec(WEIGHTED), response, {"tool_calls": [CALL]})
    found = metrics_of(result)
    # Then the score is 0.7 * 1 + 0.3 * 0.1, and each sub-grader's score and own metrics are listed
    assert result["aggregate_reward_score"] == pytest.approx(0.7 + 0.03)
    assert found["tool"] == 1.0 and found["shape"] == pytest.approx(0.1)
    assert found["tool.arg_values"] == 1.0 and found["shape.schema_valid"] == 0.0
    assert {m["type"] for m in result["metrics_list"] if m["name"] in ("tool", "shape")} == {"Reward"}


def test_weighted_score_range_is_the_weighted_sum_of_ranges():
    spec = {
        "type": "weighted",
        "graders": {
            "label": {"weight": 2, "grader": {"type": "label", "labels": ["A", "B"], "correct": 1, "incorrect": -1}},
            "sim": {"weight": 1, "grader": {"type": "text_similarity"}},
        },
    }
    assert compile_spec(spec).score_range == (-2.0, 3.0)


def test_a_part_that_cannot_read_its_reference_scores_its_minimum_and_the_others_still_count():
    # Given a reference the tool part cannot read (the schema part needs none)
    result = grade_one(compile_spec(WEIGHTED), json.dumps({"tool_calls": [CALL]}), "not a call")
    found = metrics_of(result)
    # Then the tool part scores its minimum with a metric naming why, and the schema part still counts
    assert found["tool.malformed:bad_reference"] == 1.0 and found["tool"] == 0.0
    assert found["shape"] == 1.0
    assert result["aggregate_reward_score"] == pytest.approx(0.3)


def test_an_item_no_part_can_grade_is_malformed():
    spec = {"type": "weighted", "graders": {"tool": {"weight": 1, "grader": {"type": "tool_call"}}}}
    result = grade_one(compile_spec(spec), json.dumps({"tool_calls": [CALL]}), "not a call")
    assert metrics_of(result) == {"malformed:bad_reference": 1.0}
    assert result["aggregate_reward_score"] == 0.0


GATED = {
    "type": "weighted",
    "graders": {
        "shape": {"gate": True, "grader": WEIGHTED["graders"]["shape"]["grader"]},
        "tool": {"weight": 1, "grader": {"type": "tool_call"}},
    },
}


def test_a_gate_gives_the_minimum_unless_it_passes():
    right = {"tool_calls": [CALL]}
    assert score(compile_spec(GATED), json.dumps(right), right) == 1.0
    # The same right call with a key the schema forbids: the gate closes
    result = grade_one(compile_spec(GATED), json.dumps({**right, "note": "x"}), right)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["tool"] == 1.0 and metrics_of(result)["shape"] == pytest.approx(0.1)


def test_min_and_threshold_composition():
    half = {"tool_calls": [CALL, {"name": "other", "arguments": {}}]}
    parts = {
        "tool": {"weight": 1, "grader": {"type": "tool_call"}},
        "text": {"weight": 1, "grader": {"type": "text_similarity"}},
    }
    lowest = compile_spec({"type": "weighted", "combine": "min", "graders": parts})
    assert lowest.score_range == (0.0, 1.0)
    response = json.dumps({"tool_calls": [CALL]})
    # The text part reads the JSON answer as text against a call-list reference it cannot read: malformed
    assert score(lowest, response, half) == 0.0
    stepped = compile_spec({"type": "weighted", "graders": {"tool": {**parts["tool"], "threshold": 0.9}}})
    assert score(stepped, response, half) == 0.0  # partial credit below the threshold counts as none
    assert score(stepped, response, {"tool_calls": [CALL]}) == 1.0


@pytest.mark.parametrize(
    "graders, path",
    [
        ({"g": {"gate": True, "weight": 1, "grader": {"type": "text_similarity"}}}, "graders.g.weight"),
        ({"g": {"weight": 1, "threshold": 2, "grader": {"type": "text_similarity"}}}, "graders.g.threshold"),
    ],
)
def test_composition_spec_errors_name_the_field(graders, path):
    with pytest.raises(SpecError) as caught:
        compile_spec({"type": "weighted", "graders": graders})
    assert caught.value.path == path


def test_length_guard_penalises_long_answers_and_widens_the_range():
    reward = compile_spec(
        {"type": "label", "labels": ["HQ", "LQ"], "guards": [{"type": "length", "max_chars": 10, "penalty": 0.5}]}
    )
    assert reward.score_range == (-0.5, 1.0)
    short = grade_one(reward, "HQ", "HQ")
    long = grade_one(reward, "HQ because it is clear", "HQ")
    assert (short["aggregate_reward_score"], metrics_of(short)["length_penalty"]) == (1.0, 0.0)
    assert (long["aggregate_reward_score"], metrics_of(long)["length_penalty"]) == (0.5, -0.5)


def test_format_guard_requires_and_forbids_patterns():
    reward = compile_spec(
        {
            "type": "numeric",
            "guards": [
                {"type": "format", "require_regex": "^ANSWER:", "penalty": 0.3, "name": "needs_answer_line"},
                {"type": "format", "forbid_regex": "as an ai", "ignore_case": True, "penalty": 0.2},
            ],
        }
    )
    assert reward.score_range == (-0.5, 1.0)
    assert score(reward, "ANSWER: 4", 4) == 1.0
    result = grade_one(reward, "As an AI, I say 4", 4)
    assert result["aggregate_reward_score"] == pytest.approx(0.5)
    assert metrics_of(result)["needs_answer_line"] == -0.3
    assert metrics_of(result)["format_penalty"] == -0.2


def test_length_and_format_guards_combine_in_one_spec():
    # Given a length guard followed by a format guard on the same grader
    reward = compile_spec(
        {
            "type": "label",
            "labels": ["HQ", "LQ"],
            "guards": [
                {"type": "length", "max_chars": 5, "penalty": 0.25},
                {"type": "format", "require_regex": "^[A-Z]+$", "penalty": 0.5},
            ],
        }
    )
    # Then both penalties widen the range and each is reported under its own name
    assert reward.score_range == (-0.75, 1.0)
    result = grade_one(reward, "HQ, clearly", "HQ")
    assert result["aggregate_reward_score"] == pytest.approx(0.25)
    assert metrics_of(result)["length_penalty"] == -0.25
    assert metrics_of(result)["format_penalty"] == -0.5
    assert grade_one(reward, "HQ", "HQ")["aggregate_reward_score"] == 1.0


def test_guards_apply_inside_weighted_sub_graders():
    spec = {
        "type": "weighted",
        "graders": {
            "label": {
                "weight": 1,
                "grader": {
                    "type": "label",
                    "labels": ["A", "B"],
                    "guards": [{"type": "length", "max_chars": 3, "penalty": 1}],
                },
            }
        },
    }
    result = grade_one(compile_spec(spec), "A is right", "A")
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["label.length_penalty"] == -1.0


@pytest.mark.parametrize(
    "guards, path",
    [
        ({"type": "length"}, "guards"),
        ([{"type": "length", "penalty": 1}], "guards[0].max_chars"),
        ([{"type": "length", "max_chars": 0, "penalty": 1}], "guards[0].max_chars"),
        ([{"type": "format", "penalty": 1}], "guards[0]"),
        ([{"type": "format", "require_regex": "(", "penalty": 1}], "guards[0].require_regex"),
        ([{"type": "format", "require_regex": "x", "penalty": -1}], "guards[0].penalty"),
        ([{"type": "size", "penalty": 1}], "guards[0].type"),
        (
            [{"type": "length", "max_chars": 5, "penalty": 1}, {"type": "length", "max_chars": 9, "penalty": 1}],
            "guards[1].name",
        ),
    ],
)
def test_bad_guards_name_the_field(guards, path):
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "text_similarity", "guards": guards})
    assert raised.value.path == path


# One part per grader type that needs no network (custom code included), each with a selection or guard
# where the type allows, nested twice so a weighted part's metrics are renamed by two compositions.
_EVERY_TYPE: dict[str, Any] = {
    "label": {"type": "label", "labels": ["HQ", "LQ_EDIT"]},
    "numeric": {"type": "numeric"},
    "tools": {"type": "tool_call", "select": {"response": "@", "reference": "@"}},
    "schema": {"type": "json_schema", "schema": {"type": "object"}, "select": {"response": "@"}},
    "text": {"type": "text_similarity", "guards": [{"type": "length", "max_chars": 5, "penalty": 0.1}]},
    "custom": {"type": "python", "module": "short_answer"},
}


def _nested(parts: dict[str, Any]) -> dict[str, Any]:
    inner = {"type": "weighted", "graders": {name: {"weight": 1, "grader": spec} for name, spec in parts.items()}}
    return {
        "type": "weighted",
        "graders": {"outer": {"weight": 1, "grader": inner}, "gate": {"gate": True, "grader": inner}},
    }


@pytest.mark.parametrize(
    "response, reference",
    [
        ("HQ", "HQ"),
        (json.dumps({"tool_calls": [CALL]}), {"tool_calls": [CALL]}),
        ("ANSWER: 42", "42"),
    ],
)
def test_every_metric_entry_is_made_for_its_own_outcome_so_a_composition_renames_it_once(response, reference):
    # Given identical rollouts (what graders remember from one is reused for the next) graded together
    reward = compile_spec(_nested(_EVERY_TYPE))
    alone = grade_one(reward, response, reference)["metrics_list"]
    results = reward.grade_batch([item(response, reference, item_id=f"r-{n}") for n in range(4)])
    # Then each result carries the metrics of a rollout graded alone, each part's prefix written once
    for result in results:
        assert result["metrics_list"] == alone
    for entry in alone:
        composition, _, rest = entry["name"].partition(".")
        assert composition in ("outer", "gate") and (rest == "" or rest.split(".")[0] in _EVERY_TYPE), entry
        assert rest.split(".")[0] not in ("outer", "gate"), entry
    assert len(alone) > 3 * len(_EVERY_TYPE)
    # And no metric entry is shared between two results
    entries = [entry for result in results for entry in result["metrics_list"]]
    assert len({id(entry) for entry in entries}) == len(entries)
