"""JSON-schema grader and its validator (fastjsonschema, with load-time checks)."""

from __future__ import annotations

import json

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.schema import compile_schema, validation_errors
from lambdas.reward.spec import SpecError

from .support import grade_one, metrics_of, score

CASE_SUMMARY = {
    "type": "object",
    "properties": {
        "case_name": {"type": "string", "minLength": 3, "maxLength": 80},
        "year": {"type": "integer", "minimum": 1789, "maximum": 2030},
        "holding": {"type": "string", "enum": ["affirmed", "reversed", "remanded"]},
        "citations": {"type": "array", "items": {"type": "string", "pattern": "^\\d+ U\\.S\\. \\d+$"}, "minItems": 1},
        "confidence": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
    },
    "required": ["case_name", "year", "holding"],
    "additionalProperties": False,
}
GOOD = {
    "case_name": "Miranda v. Arizona",
    "year": 1966,
    "holding": "reversed",
    "citations": ["384 U.S. 436"],
    "confidence": 0.9,
}
SPEC = {"type": "json_schema", "schema": CASE_SUMMARY}


def errors(instance) -> list[str]:
    return validation_errors(compile_schema(CASE_SUMMARY), instance)


def test_a_valid_document_scores_full_also_inside_a_fence():
    assert score(compile_spec(SPEC), json.dumps(GOOD)) == 1.0
    assert score(compile_spec(SPEC), f"```json\n{json.dumps(GOOD)}\n```") == 1.0


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"year": "1966"}, "$.year: must be integer"),
        ({"year": 1700}, "$.year: must be bigger than or equal to 1789"),
        ({"holding": "dismissed"}, "$.holding: must be one of ['affirmed', 'reversed', 'remanded']"),
        ({"case_name": "M"}, "$.case_name: must be longer than or equal to 3 characters"),
        ({"citations": []}, "$.citations: must contain at least 1 items"),
        ({"citations": ["384 US 436"]}, "$.citations[0]: must match pattern ^\\d+ U\\.S\\. \\d+$"),
        ({"confidence": 0}, "$.confidence: must be bigger than 0"),
        ({"extra": 1}, "$: must not contain {'extra'} properties"),
        ({"year": True}, "$.year: must be integer"),
    ],
)
def test_each_supported_keyword_is_enforced(change, problem):
    assert errors({**GOOD, **change}) == [problem]


def test_required_properties_and_nullable_types():
    assert errors({"case_name": "Roe v. Wade", "year": 1973}) == ["$: must contain ['holding'] properties"]
    assert errors({**GOOD, "confidence": None}) == []
    assert errors({**GOOD, "year": 1966.0}) == []


def test_invalid_json_partial_and_embedded_credit():
    reward = compile_spec(SPEC)
    bad = grade_one(reward, json.dumps({**GOOD, "year": "x"}))
    assert bad["aggregate_reward_score"] == pytest.approx(0.1)
    assert metrics_of(bad)["schema_errors"] == 1.0
    assert score(reward, "not json at all") == 0.0
    assert score(reward, f"The summary is {json.dumps(GOOD)} as requested") == 0.5


def test_no_reference_is_needed():
    result = compile_spec(SPEC)([{"id": "1", "messages": [{"role": "assistant", "content": json.dumps(GOOD)}]}])[0]
    assert result["aggregate_reward_score"] == 1.0


def test_every_error_is_reported():
    assert errors({**GOOD, "year": "x", "extra": 1}) == [
        "$.year: must be integer",
        "$: must not contain {'extra'} properties",
    ]


QUERY_ANALYSIS = {
    "$defs": {
        "analysis": {
            "type": "object",
            "required": ["Type", "Tools"],
            "properties": {
                "Type": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "Tools": {"type": "array", "items": {"$ref": "#/$defs/tool"}},
            },
        },
        "tool": {"type": "object", "required": ["Tool", "Parameters"]},
    },
    "anyOf": [
        {"$ref": "#/$defs/analysis"},
        {
            "type": "object",
            "required": ["Query analysis"],
            "properties": {"Query analysis": {"$ref": "#/$defs/analysis"}},
        },
    ],
}


@pytest.mark.parametrize(
    "instance, valid",
    [
        ({"Type": "a", "Tools": [{"Tool": "t", "Parameters": {}}]}, True),
        ({"Query analysis": {"Type": ["a", "b"], "Tools": []}}, True),
        ({"Type": ["a", 1], "Tools": []}, False),
        ({"Type": "a", "Tools": [{"Tool": "t"}]}, False),
        ({"Query analysis": {"Type": "a"}}, False),
    ],
)
def test_any_of_one_of_and_local_refs_work(instance, valid):
    assert (validation_errors(compile_schema(QUERY_ANALYSIS), instance) == []) is valid


@pytest.mark.parametrize(
    "schema, path",
    [
        ({"type": "object", "requried": ["a"]}, "schema.requried"),
        ({"type": "decimal"}, "schema.type"),
        ({"properties": {"a": {"$ref": "https://example.com/schema.json"}}}, "schema.properties.a.$ref"),
        ({"anyOf": [{"type": "string"}, {"minLenght": 1}]}, "schema.anyOf[1].minLenght"),
        ({"pattern": "("}, "schema"),
        ({"$ref": "#/$defs/missing"}, "schema"),
        ("object", "schema"),
    ],
)
def test_invalid_schemas_fail_at_load_naming_the_field(schema, path):
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "json_schema", "schema": schema})
    assert raised.value.path == path


def test_a_schema_with_defaults_never_writes_them_into_json_other_parts_select() -> None:
    # The parts of a weighted spec share one parse of the response; a schema part handed the selected
    # object must not add its default to what the next part grades.
    schema = {"type": "object", "properties": {"Tools": {"type": "array"}, "extra": {"default": "added"}}}
    spec = {
        "type": "weighted",
        "graders": {
            "schema": {"gate": True, "grader": {"type": "json_schema", "schema": schema, "select": {"response": "@"}}},
            "keys": {
                "weight": 1,
                "grader": {"type": "text_similarity", "select": {"response": "join(' ', keys(@))"}},
            },
        },
    }
    reward = compile_spec(spec)
    result = grade_one(reward, json.dumps({"Tools": []}), "Tools")
    assert result["aggregate_reward_score"] == 1.0  # "extra" was not added before the keys were read
    assert metrics_of(result)["schema"] == 1.0


def test_a_schema_without_defaults_validates_a_selected_object_as_it_is(monkeypatch) -> None:
    # Handed the selected object, the grader does not write it as JSON and read it again: one parse per rollout.
    spec = {"type": "json_schema", "schema": CASE_SUMMARY, "select": {"response": "summary"}}
    reward = compile_spec(spec)
    parses: list[str] = []
    loads = json.loads

    def counting_loads(text: str, *args: object, **kwargs: object) -> object:
        parses.append(text)
        return loads(text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(json, "loads", counting_loads)
    good = score(reward, json.dumps({"summary": GOOD}))
    bad = score(reward, json.dumps({"summary": {**GOOD, "year": "1966"}}))
    assert good == 1.0 and bad < good
    assert len(parses) == 2
