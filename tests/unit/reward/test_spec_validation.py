"""Spec validation: every error names the field path, so a bad deployment fails with a fixable message."""

from __future__ import annotations

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.llm_judge import LlmJudgeGrader
from lambdas.reward.spec import SpecError


@pytest.mark.parametrize(
    "spec, message",
    [
        ("label", "spec: must be an object, got 'label'"),
        ({}, "type: required field missing"),
        (
            {"type": "regex"},
            "type: must be one of label, numeric, tool_call, json_schema, text_similarity, llm_judge, weighted, "
            "python; got 'regex'",
        ),
        ({"type": "text_similarity", "metric": "bleu"}, "metric: must be one of token_f1, rouge_l; got 'bleu'"),
        ({"type": "text_similarity", "min_score": 1, "max_score": 1}, "max_score: must be greater than min_score"),
        ({"type": "weighted", "graders": {}}, "graders: must be a non-empty object of {name: {weight, grader}}"),
        (
            {"type": "weighted", "graders": {"a": {"weight": 0, "grader": {"type": "text_similarity"}}}},
            "graders: at least one weight must be > 0",
        ),
        (
            {"type": "weighted", "graders": {"a": {"weight": -1, "grader": {"type": "text_similarity"}}}},
            "graders.a.weight: must be a number >= 0, got -1",
        ),
        (
            {"type": "weighted", "graders": {"a": {"weight": 1, "grader": {"type": "label"}}}},
            "graders.a.grader.labels: required field missing",
        ),
        ({"type": "weighted", "graders": {"a": {"weight": 1}}}, "graders.a.grader: required field missing"),
        (
            {"type": "weighted", "graders": {"a b": {"weight": 1, "grader": {"type": "text_similarity"}}}},
            "graders.a b: sub-grader names use letters, digits, '_', '-' and '.'",
        ),
        ({"type": "llm_judge", "rubric": "r"}, "model_id: required field missing"),
        (
            {"type": "llm_judge", "model_id": "m", "rubric": "r", "max_workers": 0},
            "max_workers: must be an integer >= 1, got 0",
        ),
        (
            {"type": "llm_judge", "model_id": "m", "rubric": "r", "neutral": 1.5},
            "neutral: must be a number >= 0 and <= 1, got 1.5",
        ),
        (
            {"type": "llm_judge", "model_id": "m", "rubric": "r", "read_timeout_s": 0},
            "read_timeout_s: must be a number > 0, got 0",
        ),
    ],
)
def test_errors_name_the_field_path(spec, message):
    with pytest.raises(SpecError) as raised:
        compile_spec(spec)
    assert str(raised.value) == message


def test_typos_are_rejected_with_the_allowed_fields():
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "numeric", "rel_tolerance": 0.01})
    assert raised.value.path == "rel_tolerance"
    assert "unknown field" in raised.value.message and "rel_tol" in raised.value.message


def test_description_is_allowed_on_any_spec():
    reward = compile_spec({"type": "text_similarity", "description": "answers to legal FAQs"})
    assert reward.kind == "text_similarity"


def test_an_llm_judge_spec_compiles_without_creating_a_client():
    reward = compile_spec({"type": "llm_judge", "model_id": "m", "rubric": "r"})
    assert reward.score_range == (0.0, 1.0)
    assert isinstance(reward.grader, LlmJudgeGrader)
    assert reward.grader._client is None
