"""Grading the shapes users have: field selection, tool-call options, the legal query-analysis preset, verify."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from lambdas.reward.cli import main
from lambdas.reward.engine import compile_spec
from lambdas.reward.spec import SpecError
from lambdas.reward.text import between_tags, parse_json
from lambdas.reward.verify import verify_grader

from .support import grade_one, legal_native_rows, metrics_of, preset, score, write_jsonl

BEGIN, END = "<|begin_of_solution|>", "<|end_of_solution|>"


# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text, mode, expected",
    [
        ('{"a": 1}', "strict", {"a": 1}),
        ('```json\n{"a": 1}\n```', "strict", {"a": 1}),
        ('Sure: {"a": 1}', "strict", None),
        ('{"a": 1}\n{"a": 1}', "strict", None),
        ('{"a": [1, 2', "strict", None),
        ('Sure: {"a": 1}', "lenient", {"a": 1}),
        ('x {"a": 1} y {"b": 2} z', "first", {"a": 1}),
        ('x {"a": 1} y {"b": {"c": 3}} z', "last", {"b": {"c": 3}}),
    ],
)
def test_json_modes(text, mode, expected):
    assert parse_json(text, mode) == expected


def test_between_tags_keeps_the_answer_after_the_last_begin_tag():
    assert between_tags(f"{BEGIN}draft{END} thinking {BEGIN}final{END} tail", BEGIN, END) == "final"
    assert between_tags("no tags at all", BEGIN, END) == "no tags at all"


def test_a_label_read_from_one_field_of_a_json_answer():
    spec = {"type": "label", "labels": ["HQ", "LQ_EDIT"], "select": {"json": "last", "response": "label"}}
    reward = compile_spec(spec)
    # The explanation names the other label; only the field counts
    answer = json.dumps({"reason": "It is clearly not LQ_EDIT, a HQ question", "label": "HQ"})
    assert score(reward, answer, "HQ") == 1.0
    assert score(reward, json.dumps({"reason": "HQ", "label": "LQ_EDIT"}), "HQ") == 0.0
    unreadable = grade_one(reward, "HQ", "HQ")  # no JSON: nothing selected
    assert unreadable["aggregate_reward_score"] == 0.0
    assert metrics_of(unreadable)["select_unreadable"] == 1.0


def test_a_reference_path_that_selects_nothing_is_a_bad_reference():
    reward = compile_spec({"type": "text_similarity", "select": {"reference": "answer.text"}})
    result = grade_one(reward, "the court reversed", {"answer": {"other": 1}})
    assert metrics_of(result) == {"malformed:bad_reference": 1.0}


@pytest.mark.parametrize(
    "select, path",
    [
        ({"response": "Tools[?"}, "select.response"),
        ({"tags": ["<a>"]}, "select.tags"),
        ({"json": "sometimes"}, "select.json"),
        ({"respones": "a"}, "select.respones"),
        ({}, "select"),
    ],
)
def test_select_errors_name_the_field(select, path):
    with pytest.raises(SpecError) as caught:
        compile_spec({"type": "text_similarity", "select": select})
    assert caught.value.path == path


# ---------------------------------------------------------------- tool-call options

CALLS: list[dict[str, Any]] = [
    {"name": "statute_retrieval", "arguments": {"regulation": "Regulation D"}},
    {"name": "case_law_search", "arguments": {"query": "general solicitation", "limit": 5}},
]


def calls(*entries):
    return json.dumps({"tool_calls": list(entries)})


def test_set_matching_ignores_repeats_and_multiset_counts_them():
    repeated = calls(*CALLS, CALLS[1])
    multiset = compile_spec({"type": "tool_call"})
    as_set = compile_spec({"type": "tool_call", "match": "set"})
    assert score(as_set, repeated, {"tool_calls": CALLS}) == 1.0
    assert score(multiset, repeated, {"tool_calls": CALLS}) < 0.95


def test_positional_order_costs_a_swap_and_extra_calls():
    subsequence = compile_spec({"type": "tool_call", "weights": {"json_valid": 0, "order": 1, "tool_names": 0}})
    positional = compile_spec(
        {"type": "tool_call", "order": "positional", "weights": {"json_valid": 0, "order": 1, "tool_names": 0}}
    )
    swapped = calls(CALLS[1], CALLS[0])
    assert metrics_of(grade_one(subsequence, swapped, {"tool_calls": CALLS}))["order"] == 0.5
    assert metrics_of(grade_one(positional, swapped, {"tool_calls": CALLS}))["order"] == 0.0
    extra = calls(*CALLS, {"name": "citation_validator", "arguments": {}})
    assert metrics_of(grade_one(positional, extra, {"tool_calls": CALLS}))["order"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "arguments, value, credit",
    [
        ({"compare": "normalized"}, "general  SOLICITATION", 1.0),
        ({"compare": "exact"}, "general  SOLICITATION", 0.0),
        ({"compare": "fuzzy", "threshold": 0.8}, "general solicitations", 0.976),
        ({"compare": "fuzzy", "threshold": 0.8}, "private placement", 0.0),
        ({"compare": "exact", "rel_tol": 0.1}, 5.4, 1.0),
    ],
)
def test_argument_comparison(arguments, value, credit):
    reward = compile_spec({"type": "tool_call", "arguments": arguments})
    key = "limit" if isinstance(value, float) else "query"
    changed = copy.deepcopy(CALLS)
    changed[1]["arguments"][key] = value
    found = metrics_of(grade_one(reward, calls(*changed), {"tool_calls": CALLS}))
    # arg_values averages over both calls: the untouched one is right
    assert found["arg_values"] == pytest.approx((1 + (1 + credit) / 2) / 2, abs=0.005)


@pytest.mark.parametrize(
    "response",
    [
        "Here are the calls: " + calls(*CALLS),
        calls(*CALLS) + "\n" + calls(*CALLS),
        calls(*CALLS)[:-10],
    ],
)
def test_strict_json_gives_nothing_for_wrapped_duplicated_or_truncated_json(response):
    assert score(compile_spec({"type": "tool_call", "strict_json": True}), response, {"tool_calls": CALLS}) == 0.0
    assert score(preset("tool-calling"), response, {"tool_calls": CALLS}) == 0.0


# ---------------------------------------------------------------- the legal query-analysis preset


def damaged(reference: dict, damage: str) -> str:
    value = copy.deepcopy(reference)
    tools = value["Tools"]
    if damage == "wrong tool":
        tools[-1]["Tool"] = "some_other_tool"
    elif damage == "missing tool":
        tools.pop()
    elif damage == "extra tool":
        tools.append({"Tool": "citation_validator", "Parameters": {"query": "x"}, "Reasoning": "more"})
    elif damage == "wrong order":
        tools.reverse()
    elif damage == "wrong parameter":
        first = tools[0]["Parameters"]
        first[next(iter(first))] = "an unrelated value entirely"
    elif damage == "duplicate tools":
        value["Tools"] = [tool for tool in tools for _ in range(2)]
    elif damage == "all tools at once":
        names = ["statute_retrieval", "case_law_search", "compliance_checker", "citation_validator"]
        tools.extend({"Tool": name, "Parameters": {}, "Reasoning": ""} for name in names)
    elif damage == "invalid JSON":
        return json.dumps(value)[:-3]
    elif damage == "schema broken":
        del tools[0]["Reasoning"]
    return json.dumps(value)


DAMAGES = [
    "wrong tool",
    "missing tool",
    "extra tool",
    "wrong order",
    "wrong parameter",
    "invalid JSON",
    "duplicate tools",
    "all tools at once",
    "schema broken",
]


def test_legal_preset_grades_the_native_shape_flat_wrapped_and_in_solution_tags():
    reward = preset("legal-tool-calling")
    for row in legal_native_rows():
        reference = row["reference_answer"]
        wrapped = {"Query analysis": {**reference, "Type": reference["Type"]}}
        answers = [
            json.dumps(reference),
            json.dumps(wrapped),
            f"<|begin_of_thought|>Let me think.<|end_of_thought|>{BEGIN}```json\n{json.dumps(wrapped)}\n```{END}",
        ]
        results = reward(
            [{**row, "messages": [*row["messages"], {"role": "assistant", "content": a}]} for a in answers]
        )
        for result in results:
            assert result["aggregate_reward_score"] == 1.0, result
            assert not any(m["name"].startswith("malformed") for m in result["metrics_list"])


@pytest.mark.parametrize("damage", DAMAGES)
def test_legal_preset_scores_each_kind_of_damage_lower(damage):
    reward = preset("legal-tool-calling")
    rows = [
        row
        for row in legal_native_rows()
        if damage not in ("wrong tool", "wrong order") or len(row["reference_answer"]["Tools"]) > 1
    ]
    for row in rows:
        text = damaged(row["reference_answer"], damage)
        assert score(reward, text, row["reference_answer"]) <= 0.95, (row["id"], text)


def test_legal_preset_scores_a_wrong_type_lower_and_reports_every_part():
    row = legal_native_rows()[0]
    wrong = {**row["reference_answer"], "Type": "citation_verification"}
    result = grade_one(preset("legal-tool-calling"), json.dumps(wrong), row["reference_answer"])
    found = metrics_of(result)
    assert result["aggregate_reward_score"] == pytest.approx(0.9)
    assert found["type"] == 0.0 and found["tools"] == 1.0 and found["schema"] == 1.0


# ---------------------------------------------------------------- verify for any output shape


def test_verify_uses_the_ideal_template_and_fails_a_hackable_spec_with_its_table():
    lenient = {
        "type": "tool_call",
        "match": "set",
        "weights": {"json_valid": 0.1, "tool_names": 0.5, "order": 0, "arg_names": 0.2, "arg_values": 0.2},
        "select": {
            "tags": [BEGIN, END],
            "json": "lenient",
            "response": "Tools[].{name: Tool, arguments: Parameters}",
            "reference": "Tools[].{name: Tool, arguments: Parameters}",
        },
        "ideal": BEGIN + "{reference}" + END,
    }
    report = verify_grader(compile_spec(lenient), legal_native_rows(), sample=None)
    failed = {case.case for case in report.cases if not case.passed}
    assert "reference" not in failed
    assert {"duplicate_tools", "prose_wrapped", "duplicated_json"} <= failed
    assert "verdict: FAIL" in report.table()


def test_verify_ideal_responses_by_row_id(tmp_path):
    rows = legal_native_rows()
    ideal = tmp_path / "ideal.jsonl"
    ideal.write_text(
        "".join(
            json.dumps({"id": row["id"], "response": BEGIN + json.dumps(row["reference_answer"]) + END}) + "\n"
            for row in rows[:3]
        )
    )
    dataset = write_jsonl(tmp_path / "rft.jsonl", rows)
    out = io.StringIO()
    code = main(["verify", "--preset", "legal-tool-calling", "--dataset", dataset, "--ideal", str(ideal)], out=out)
    assert code == 0, out.getvalue()
    assert "rows 3" in out.getvalue() and "no_ideal_response" in out.getvalue()
    ideal.write_text('{"id": "qa-0"}\n')
    assert main(["verify", "--preset", "legal-tool-calling", "--dataset", dataset, "--ideal", str(ideal)]) == 2
