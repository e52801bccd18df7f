"""Structured-output grader: the response must be JSON that validates against a schema.

Credit: full for clean JSON (the whole response or a fenced block) that
validates; ``embedded_credit`` of that when the JSON had to be dug out of prose;
``invalid_credit`` when JSON parses but fails the schema; nothing without JSON.
No reference answer is needed.
"""

from __future__ import annotations

from lambdas.reward.graders.base import Graded, Grader, finish_scored, metric, reward, scaled, score_fields
from lambdas.reward.items import ParsedSample, Sample
from lambdas.reward.schema import Check, compile_schema
from lambdas.reward.spec import Fields
from lambdas.reward.text import EMBEDDED, NONE, STRICT, extract_json


class JsonSchemaGrader(Grader):
    kind = "json_schema"
    needs_reference = False
    reads_json = True

    def __init__(
        self,
        check: Check,
        *,
        embedded_credit: float = 0.5,
        invalid_credit: float = 0.1,
        min_score: float = 0.0,
        max_score: float = 1.0,
    ) -> None:
        self.check = check
        self.embedded_credit = embedded_credit
        self.invalid_credit = invalid_credit
        self.min_score = min_score
        self.max_score = max_score
        self.score_range = (min_score, max_score)

    def grade(self, sample: Sample) -> Graded:
        # JSON already read whole is as clean as JSON gets; the check never modifies it (see compile_schema).
        value, quality = (sample.parsed, STRICT) if type(sample) is ParsedSample else extract_json(sample.response)
        if quality == NONE:
            return self.min_score, [reward("schema_valid", 0.0), metric("json_valid", 0.0)]
        errors = self.check(value)
        fraction = 1.0 if not errors else self.invalid_credit
        if quality == EMBEDDED:
            fraction *= self.embedded_credit
        return scaled(fraction, self.min_score, self.max_score), [
            {"name": "schema_valid", "value": 0.0 if errors else 1.0, "type": "Reward"},
            {"name": "json_valid", "value": float(quality), "type": "Metric"},
            {"name": "schema_errors", "value": float(len(errors)), "type": "Metric"},
        ]


def build(fields: Fields, context: object) -> JsonSchemaGrader:
    check = compile_schema(fields.raw("schema"), fields.at("schema"))
    grader = JsonSchemaGrader(
        check,
        embedded_credit=fields.number("embedded_credit", 0.5, minimum=0, maximum=1),
        invalid_credit=fields.number("invalid_credit", 0.1, minimum=0, maximum=1),
        **score_fields(fields),
    )
    return finish_scored(fields, grader)
