"""Tool-call grader: graded credit on the legal-assistant case (search_case_law, get_statute)."""

from __future__ import annotations

import json

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.tool_call import values_equal
from lambdas.reward.spec import SpecError

from .support import grade_one, metrics_of, preset, score

SEARCH = {
    "name": "search_case_law",
    "arguments": {"query": "Miranda v. Arizona", "jurisdiction": "federal", "limit": 5},
}
STATUTE = {"name": "get_statute", "arguments": {"code": "Penal Code", "section": "187"}}
REFERENCE = {"tool_calls": [SEARCH, STATUTE]}
TOOL = {"type": "tool_call"}
COMPONENTS = ("json_valid", "tool_names", "order", "arg_names", "arg_values")


def components(response, reference=REFERENCE, spec=TOOL) -> dict[str, float]:
    found = metrics_of(grade_one(compile_spec(spec), response, reference))
    return {name: found[name] for name in COMPONENTS}


def calls(*entries) -> str:
    return json.dumps({"tool_calls": list(entries)})


def test_the_exact_calls_score_full():
    result = grade_one(compile_spec(TOOL), calls(SEARCH, STATUTE), REFERENCE)
    assert result["aggregate_reward_score"] == 1.0
    assert all(metrics_of(result)[name] == 1.0 for name in COMPONENTS)
    assert metrics_of(result)["tool_call"] == 1.0


@pytest.mark.parametrize(
    "response",
    [
        f"```json\n{calls(SEARCH, STATUTE)}\n```",
        f"Here are the calls:\n```json\n{calls(SEARCH, STATUTE)}\n```\nDone.",
        json.dumps([SEARCH, STATUTE]),
        json.dumps(
            {
                "tool_calls": [
                    {"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                    for c in (SEARCH, STATUTE)
                ]
            }
        ),
        json.dumps(
            {
                "tool_calls": [
                    {"toolUse": {"toolUseId": "1", "name": c["name"], "input": c["arguments"]}}
                    for c in (SEARCH, STATUTE)
                ]
            }
        ),
    ],
)
def test_response_shapes_fenced_bare_list_and_openai_string_arguments(response):
    assert score(compile_spec(TOOL), response, REFERENCE) == 1.0


def test_a_single_call_object_matches_a_single_call_reference():
    assert score(compile_spec(TOOL), json.dumps(STATUTE), {"tool_calls": [STATUTE]}) == 1.0
    assert score(compile_spec(TOOL), json.dumps(STATUTE), STATUTE) == 1.0


def test_wrong_order_loses_only_the_order_component():
    found = components(calls(STATUTE, SEARCH))
    assert found == {"json_valid": 1.0, "tool_names": 1.0, "order": 0.5, "arg_names": 1.0, "arg_values": 1.0}


def test_a_missing_call_loses_names_and_arguments():
    found = components(calls(SEARCH))
    assert found["tool_names"] == pytest.approx(2 / 3)
    assert found["arg_values"] == 0.5
    assert found["order"] == 1.0


def test_an_extra_call_loses_part_of_the_score():
    extra = {"name": "summarize_document", "arguments": {"document_id": "doc-1"}}
    result = grade_one(compile_spec(TOOL), calls(SEARCH, STATUTE, extra), REFERENCE)
    assert metrics_of(result)["tool_names"] == pytest.approx(0.8)
    assert 0.5 < result["aggregate_reward_score"] < 1.0


def test_a_wrong_argument_value_loses_part_of_the_arg_values():
    wrong = {"name": "get_statute", "arguments": {"code": "Penal Code", "section": "190"}}
    found = components(calls(SEARCH, wrong))
    assert found["arg_values"] == pytest.approx((1 + 0.5) / 2)
    assert found["arg_names"] == 1.0


def test_a_misnamed_argument_loses_arg_names_and_its_value():
    renamed = {"name": "get_statute", "arguments": {"code": "Penal Code", "sec": "187"}}
    found = components(calls(SEARCH, renamed))
    assert found["arg_names"] == pytest.approx((1 + 0.5) / 2)
    assert found["arg_values"] == pytest.approx((1 + 0.5) / 2)


def test_arguments_are_compared_after_type_coercion():
    coerced = {
        "name": "search_case_law",
        "arguments": {"query": "  miranda   V. ARIZONA ", "jurisdiction": "Federal", "limit": "5"},
    }
    assert components(calls(coerced, STATUTE))["arg_values"] == 1.0


@pytest.mark.parametrize(
    "expected, actual, equal",
    [
        (5, "5", True),
        (5, 5.0, True),
        ("5.0", 5, True),
        (True, "true", True),
        (False, "False", True),
        (True, 1, False),
        (None, "null", True),
        ("Penal  Code", "penal code", True),
        (["CA", "NY"], ["ny", "ca"], True),
        (["CA", "NY"], ["CA"], False),
        ({"from": 1990, "to": "2000"}, {"to": 2000, "from": "1990"}, True),
        ({"from": 1990}, {"from": 1990, "to": 2000}, False),
        ("187", "190", False),
        ("abc", 5, False),
    ],
)
def test_value_equality(expected, actual, equal):
    assert values_equal(expected, actual) is equal


@pytest.mark.parametrize(
    "response", ["", "I will search the case law for you.", '{"tool_calls": [', "I'm sorry, I can't help."]
)
def test_no_json_scores_zero(response):
    result = grade_one(compile_spec(TOOL), response, REFERENCE)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["json_valid"] == 0.0


def test_json_dug_out_of_prose_gets_half_json_validity():
    found = components(f"Sure! {calls(SEARCH, STATUTE)} Let me know.")
    assert found["json_valid"] == 0.5
    assert found["tool_names"] == 1.0


def test_unparseable_arguments_string_scores_no_argument_credit():
    response = json.dumps(
        {"tool_calls": [{"type": "function", "function": {"name": "get_statute", "arguments": "{code: Penal"}}]}
    )
    found = components(response, {"tool_calls": [STATUTE]})
    assert found["tool_names"] == 1.0
    assert found["arg_names"] == 0.0 and found["arg_values"] == 0.0


def test_a_reference_without_calls_expects_none():
    assert score(compile_spec(TOOL), "The statute of limitations is two years.", {"tool_calls": []}) == 1.0
    assert score(compile_spec(TOOL), calls(SEARCH), {"tool_calls": []}) == pytest.approx(0.1)


def test_weights_are_configurable():
    # Given a grader that only cares about order
    spec = {
        "type": "tool_call",
        "weights": {"json_valid": 0, "tool_names": 0, "order": 1, "arg_names": 0, "arg_values": 0},
    }
    assert score(compile_spec(spec), calls(STATUTE, SEARCH), REFERENCE) == 0.5
    assert score(compile_spec(spec), calls(SEARCH, STATUTE), REFERENCE) == 1.0


def test_min_and_max_score_map_the_fraction():
    reward = compile_spec({"type": "tool_call", "min_score": -1, "max_score": 1})
    assert reward.score_range == (-1.0, 1.0)
    assert score(reward, "nothing", REFERENCE) == -1.0


@pytest.mark.parametrize(
    "reference",
    ["not json", {"tool_calls": [{"arguments": {}}]}, 5, {"tool_calls": [{"name": "f", "arguments": "{bad"}]}],
)
def test_unusable_references_are_malformed(reference):
    assert metrics_of(grade_one(compile_spec(TOOL), calls(SEARCH), reference)) == {"malformed:bad_reference": 1.0}


def test_reference_may_be_a_json_string():
    assert score(compile_spec(TOOL), calls(SEARCH, STATUTE), json.dumps(REFERENCE)) == 1.0


def test_tool_calling_preset_penalises_long_answers():
    reward = preset("tool-calling")
    assert reward.score_range == (-0.5, 1.0)
    assert score(reward, calls(SEARCH, STATUTE), REFERENCE) == 1.0
    assert score(reward, calls(SEARCH, STATUTE) + " junk" * 1000, REFERENCE) < 0.6


def test_a_negative_weight_names_its_path_inside_a_weighted_spec():
    spec = {
        "type": "weighted",
        "graders": {"tool": {"weight": 1, "grader": {"type": "tool_call", "weights": {"order": -1}}}},
    }
    with pytest.raises(SpecError) as raised:
        compile_spec(spec)
    assert str(raised.value).startswith("graders.tool.grader.weights.order: must be a number >= 0")


def test_unknown_weight_names_are_rejected():
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "tool_call", "weights": {"names": 1}})
    assert raised.value.path == "weights.names"
