"""JSON-schema grader and the built-in schema validator subset."""

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
        ({"year": "1966"}, "$.year: expected integer"),
        ({"year": 1700}, "$.year: violates minimum 1789"),
        ({"holding": "dismissed"}, "$.holding: not one of the allowed values"),
        ({"case_name": "M"}, "$.case_name: shorter than 3"),
        ({"citations": []}, "$.citations: fewer than 1 items"),
        ({"citations": ["384 US 436"]}, "$.citations[0]: does not match pattern"),
        ({"confidence": 0}, "$.confidence: violates exclusiveMinimum 0"),
        ({"extra": 1}, "$: unexpected property 'extra'"),
        ({"year": True}, "$.year: expected integer"),
    ],
)
def test_each_supported_keyword_is_enforced(change, problem):
    assert errors({**GOOD, **change}) == [problem]


def test_required_properties_and_nullable_types():
    assert errors({"case_name": "Roe v. Wade", "year": 1973}) == ["$: missing required property 'holding'"]
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


@pytest.mark.parametrize(
    "schema, path",
    [
        ({"type": "object", "oneOf": []}, "schema.oneOf"),
        ({"type": "decimal"}, "schema.type"),
        ({"properties": {"a": {"$ref": "#/x"}}}, "schema.properties.a.$ref"),
        ({"minLength": -1}, "schema.minLength"),
        ({"pattern": "("}, "schema.pattern"),
        ({"enum": []}, "schema.enum"),
        ("object", "schema"),
    ],
)
def test_unsupported_or_invalid_schemas_fail_at_load(schema, path):
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "json_schema", "schema": schema})
    assert raised.value.path == path
