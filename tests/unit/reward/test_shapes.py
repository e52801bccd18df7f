"""Grading the shapes users have: field selection, tool-call options, the legal query-analysis preset, verify."""

from __future__ import annotations

import copy
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.legal_rank_correlation import DAMAGES, damaged, spearman
from benchmarks.legal_rank_correlation import main as correlation_main
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
    graded = 0
    for row in legal_native_rows():
        text = damaged(row["reference_answer"], damage)
        if text is not None:
            graded += 1
            assert score(reward, text, row["reference_answer"]) <= 0.95, (row["id"], text)
    assert graded >= 2


def test_legal_rank_correlation_script_runs_on_rows_and_a_reward_module(tmp_path, capsys):
    # A stand-in reward module with the published signature: 1 for the exact reference, else 0
    module = tmp_path / "reward_module.py"
    module.write_text(
        "import json\n"
        "def lambda_grader(samples):\n"
        "    print('noise')\n"
        "    return [{'id': s['id'], 'aggregate_reward_score': float(\n"
        "        s['messages'][-1]['content'] == json.dumps(s['reference_answer'])), 'metrics_list': []}\n"
        "        for s in samples]\n"
    )
    data = write_jsonl(tmp_path / "val.jsonl", legal_native_rows())
    assert correlation_main(["--data", data, "--reward-module", str(module)]) == 0
    output = capsys.readouterr().out
    assert "preset malformed items: 0" in output and "noise" not in output
    assert "spearman rank correlation" in output


def test_spearman_with_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 2], [1, 1, 2, 2]) == pytest.approx(1.0)


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


def test_the_worked_examples_in_the_reward_readme_compile_and_grade():
    text = (Path(__file__).resolve().parents[3] / "lambdas" / "reward" / "README.md").read_text(encoding="utf-8")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    assert len(blocks) == 3
    legal, finqa, label = (compile_spec(block) for block in blocks)
    row = legal_native_rows()[0]
    assert score(legal, json.dumps({"Query analysis": row["reference_answer"]}), row["reference_answer"]) == 1.0
    assert score(finqa, "<|begin_of_solution|>ANSWER: 6.65<|end_of_solution|>", 0.0665) == 1.0
    assert score(label, json.dumps({"why": "not LQ_EDIT", "label": "HQ"}), "HQ") == 1.0


# ---------------------------------------------------------------- selections evaluate as jmespath does


def _random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([None, True, False, 0, 1, 2.5, "", "x", [], {}])
    if roll < 0.6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["a", "b", "Type", "Tools", "Tool", "Parameters", "Query analysis"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _outcome(search, value):
    try:
        return "value", search(value)
    except Exception as exc:  # noqa: BLE001 - the error type is part of what must agree
        return "error", type(exc).__name__


@pytest.mark.parametrize(
    "expression",
    [
        '"Query analysis" || @',
        "join(' ', to_array((\"Query analysis\" || @).Type))",
        '("Query analysis" || @).Tools[].{name: Tool, arguments: Parameters}',
        "a.b[0]",
        "a[*].b",
        "a[?b > `1`].a",
        "a || b || Type",
        "a[].b[]",
        "[a, b]",
        "sort_by(a, &b)",
        "a | b",
        "a.*",
        "a[1:3]",
        "length(a) || `0`",
        "a.{x: b, y: Tool, x: Type}",
        "Tools[].{name: Tool, arguments: Parameters.a}",
        "(a || @).b.Tool",
        "a || @ || b",
        "{x: a, x: b}",
    ],
)
def test_compiled_selection_evaluates_as_jmespath_search(expression):
    import jmespath

    from lambdas.reward.graders.select import _Expression

    compiled = _Expression(jmespath.compile(expression))
    rng = random.Random(expression)
    for _ in range(2000):
        value = _random_json(rng)
        expected = _outcome(lambda v: jmespath.search(expression, v), value)
        got = _outcome(compiled.search, value)
        assert got == expected and type(got[1]) is type(expected[1]), (expression, value)
