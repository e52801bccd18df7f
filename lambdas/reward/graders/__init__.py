"""Grader types and the builder that turns a spec into a grader tree.

Every spec is an object with a ``type`` (one of :data:`GRADER_TYPES`), optional
``select`` (which part of the response and reference to grade, see :mod:`.select`),
optional ``guards`` (see :mod:`.guards`), an optional ``ideal`` template (how the
right answer is written, for ``verify``: ``{reference}`` stands for the reference
answer, a string as it is and anything else as JSON), an optional free-text
``description``, and the fields of its type. Unknown fields are errors, so typos fail at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdas.reward.graders import json_schema, label, llm_judge, numeric, text_similarity, tool_call, weighted
from lambdas.reward.graders.base import Grader
from lambdas.reward.graders.guards import build_guards
from lambdas.reward.graders.select import build_select
from lambdas.reward.spec import Fields, SpecError


def _python(fields: Fields, context: Any) -> Grader:
    """A grader written in Python by the user (imported here: the harness imports this package)."""
    from lambdas.reward.harness import build

    return build(fields, context)


BUILDERS: dict[str, Callable[[Fields, Any], Grader]] = {
    "label": label.build,
    "numeric": numeric.build,
    "tool_call": tool_call.build,
    "json_schema": json_schema.build,
    "text_similarity": text_similarity.build,
    "llm_judge": llm_judge.build,
    "weighted": weighted.build,
    "python": _python,
}
GRADER_TYPES = tuple(BUILDERS)


@dataclass
class BuildContext:
    """What builders may need beyond the spec: injectable clients for graders that call AWS."""

    bedrock_client: Any = None
    bedrock_client_factory: Callable[..., Any] | None = None

    def build(self, spec: object, path: str = "") -> Grader:
        fields = Fields(spec, path)
        kind = fields.string("type", choices=list(GRADER_TYPES))
        guards = fields.raw("guards", None)
        select = fields.raw("select", None)
        ideal = fields.string("ideal", None)
        fields.raw("description", None)
        grader = BUILDERS[kind](fields, self)
        if select is not None:
            grader = build_select(grader, Fields(select, fields.at("select")))
        if guards is not None:
            grader = build_guards(grader, guards, fields.at("guards"))
        if ideal is not None:
            if "{reference}" not in ideal:
                raise SpecError(fields.at("ideal"), "must contain {reference} (where the reference answer goes)")
            grader.ideal = ideal
        return grader
