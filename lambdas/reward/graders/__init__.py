"""Grader types and the builder that turns a spec into a grader tree.

Every spec is an object with a ``type`` (one of :data:`GRADER_TYPES`), optional
``guards`` (see :mod:`.guards`), an optional free-text ``description``, and the
fields of its type. Unknown fields are errors, so typos fail at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdas.reward.graders import json_schema, label, llm_judge, numeric, text_similarity, tool_call, weighted
from lambdas.reward.graders.base import Grader
from lambdas.reward.graders.guards import build_guards
from lambdas.reward.spec import Fields


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
        fields.raw("description", None)
        grader = BUILDERS[kind](fields, self)
        if guards is not None:
            grader = build_guards(grader, guards, fields.at("guards"))
        return grader
