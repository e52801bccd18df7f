"""Field selection: grade one part of the response and of the reference (``"select": {...}``).

Any spec may carry a ``select`` object; the grader then sees, instead of the
whole response and reference:

- ``tags``: ``[begin, end]``: only the text between the last ``begin`` tag and the
  ``end`` tag after it (reasoning models answer after their thoughts, e.g.
  ``["<|begin_of_solution|>", "<|end_of_solution|>"]``); a missing tag keeps that side;
- ``json``: how the JSON is read from that text: ``strict`` (default when a
  ``response`` path is given: the text, or one fence that is the whole text, is
  one JSON value; prose around it, two values or a truncated value read as
  nothing), ``lenient`` (a fence anywhere, or JSON dug out of prose), ``first``
  or ``last`` (the first or last JSON object or array in the text);
- ``response``: a JMESPath expression (https://jmespath.org) evaluated on that
  JSON; the result is what the grader grades (a string as it is, anything else
  as JSON text). ``("Query analysis" || @).Tools`` reads a wrapped or flat
  answer; ``Tools[].{name: Tool, arguments: Parameters}`` maps keys to the
  shape a grader expects;
- ``reference``: a JMESPath expression evaluated on the reference answer (a
  string reference is read as JSON first).

A response with no readable JSON, or whose path selects nothing, is graded as an
empty answer and reports ``select_unreadable`` = 1. A reference whose path
selects nothing is a bad reference (``malformed:bad_reference``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from lambdas.reward.graders.base import Grader, MalformedItem, Outcome
from lambdas.reward.items import BAD_REFERENCE, ParsedSample, Sample
from lambdas.reward.spec import Fields, SpecError
from lambdas.reward.text import JSON_MODES, between_tags, parse_json

UNREADABLE = "select_unreadable"
_REFERENCE = "select:reference"  # a sample's memo key for its reference read as JSON
_CONTAINERS = (dict, list)


def _compile(fields: Fields, key: str) -> Any:
    text = fields.string(key, None)
    if text is None:
        return None
    import jmespath  # only specs that select fields pay for the import at cold start

    try:
        return _Expression(jmespath.compile(text))
    except ValueError as exc:  # jmespath's errors are ValueErrors
        raise SpecError(fields.at(key), f"invalid JMESPath expression: {str(exc).splitlines()[0]}") from None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_Evaluate = Callable[[Any], Any]
_COMPILED = frozenset(
    {
        "field",
        "current",
        "identity",
        "literal",
        "subexpression",
        "pipe",
        "index_expression",
        "or_expression",
        "flatten",
        "projection",
        "key_val_pair",
        "multi_select_dict",
        "function_expression",
    }
)


def _is_false(value: Any) -> bool:
    """JMESPath's falsehood: empty string, list or object, null, false (0 is true)."""
    if value is None or value is False:
        return True
    if type(value) in _CONTAINERS or type(value) is str:
        return not value
    return bool(value == "" or value == [] or value == {})


class _Expression:
    """A compiled JMESPath expression turned into nested Python closures, evaluated without a tree walk.

    The node types selections use (fields, ``@``, ``a.b``, ``||``, ``[]``, projections,
    ``{key: expr}``, literals, function calls) become closures that do what jmespath's own
    interpreter does for them; any other node is handed to that interpreter, so every
    expression evaluates exactly as ``jmespath.search`` would.
    """

    def __init__(self, parsed: Any) -> None:
        from jmespath.visitor import TreeInterpreter

        self.expression = parsed.expression
        self._interpreter = TreeInterpreter()
        self.search: _Evaluate = self._compile(parsed.parsed)

    def _compile(self, node: dict[str, Any]) -> _Evaluate:
        kind = node["type"]
        if kind not in _COMPILED:
            visit = self._interpreter.visit
            return lambda value: visit(node, value)
        children = [self._compile(child) for child in node["children"]]
        if kind == "field":
            name = node["value"]

            def field(value: Any) -> Any:
                try:
                    return value.get(name)
                except AttributeError:
                    return None

            return field
        if kind in ("current", "identity"):
            return lambda value: value
        if kind == "literal":
            literal = node["value"]
            return lambda value: literal
        if kind in ("subexpression", "pipe", "index_expression"):
            if len(children) == 2:
                first, second = children
                if node["children"][1]["type"] == "field":  # ``x.name``: the field read here, not by a call
                    name = node["children"][1]["value"]

                    def then_field(value: Any) -> Any:
                        value = first(value)
                        try:
                            return value.get(name)
                        except AttributeError:
                            return None

                    return then_field
                return lambda value: second(first(value))

            def chain(value: Any) -> Any:
                for step in children:
                    value = step(value)
                return value

            return chain
        if kind == "flatten":
            (inner,) = children

            def flatten(value: Any) -> Any:
                base = inner(value)
                if not isinstance(base, list):
                    return None
                merged: list[Any] = []
                for element in base:
                    if isinstance(element, list):
                        merged.extend(element)
                    else:
                        merged.append(element)
                return merged

            return flatten
        if kind in ("or_expression", "projection"):
            left, right = children
            if kind == "or_expression":
                if node["children"][1]["type"] in ("current", "identity") and node["children"][0]["type"] == "field":
                    # ``name || @``: the field, else the value itself
                    name = node["children"][0]["value"]

                    def field_or_itself(value: Any) -> Any:
                        try:
                            matched = value.get(name)
                        except AttributeError:
                            return value
                        return value if _is_false(matched) else matched

                    return field_or_itself
                if node["children"][1]["type"] in ("current", "identity"):  # ``x || @``: x, else the value itself

                    def or_itself(value: Any) -> Any:
                        matched = left(value)
                        return value if _is_false(matched) else matched

                    return or_itself

                def either(value: Any) -> Any:
                    matched = left(value)
                    return right(value) if _is_false(matched) else matched

                return either

            def project(value: Any) -> Any:
                base = left(value)
                if not isinstance(base, list):
                    return None
                return [current for current in map(right, base) if current is not None]

            return project
        if kind == "key_val_pair":
            return children[0]
        if kind == "multi_select_dict":
            pairs = [(child["value"], compiled) for child, compiled in zip(node["children"], children, strict=True)]
            fields = [child["children"][0] for child in node["children"]]
            if len(pairs) == 2 and all(field["type"] == "field" for field in fields):
                # ``{name: Tool, arguments: Parameters}`` (a key mapping): both read from an object directly
                (first_key, _), (second_key, _) = pairs
                first_name, second_name = (field["value"] for field in fields)

                def select_two(value: Any) -> Any:
                    if type(value) is dict:
                        return {first_key: value.get(first_name), second_key: value.get(second_name)}
                    return None if value is None else {key: compiled(value) for key, compiled in pairs}

                return select_two

            def select(value: Any) -> Any:
                if value is None:
                    return None
                return {key: compiled(value) for key, compiled in pairs}

            return select
        # a function call: its arguments evaluated, then jmespath's own function (type checks included)
        name, call = node["value"], self._interpreter._functions.call_function
        if name == "to_array" and len(children) == 1:  # takes any value: nothing to check
            (single,) = children

            def to_array(value: Any) -> Any:
                result = single(value)
                return result if isinstance(result, list) else [result]

            return to_array
        if name == "join" and len(children) == 2:
            glue, parts = children

            def join(value: Any) -> Any:
                separator, strings = glue(value), parts(value)
                if type(separator) is str and type(strings) is list:
                    for part in strings:
                        if type(part) is not str:
                            break
                    else:
                        return separator.join(strings)
                return call(name, [separator, strings])  # jmespath's own checks and errors

            return join

        def function(value: Any) -> Any:
            return call(name, [argument(value) for argument in children])

        return function


def _search(expression: _Expression, value: Any) -> Any:
    try:
        return expression.search(value)
    except (TypeError, ValueError):  # a type error in the expression's functions: nothing selected
        return None


class Selected(Grader):
    """A grader applied to the selected parts of each sample."""

    def __init__(
        self,
        inner: Grader,
        *,
        tags: tuple[str, str] | None = None,
        json_mode: str | None = None,
        response: Any = None,
        reference: Any = None,
    ) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.needs_reference = inner.needs_reference
        self.score_range = inner.score_range
        self.tags = tags
        self.json_mode = json_mode
        self.response = response
        self.reference = reference
        self._memo_key = (tags, json_mode)  # where a sample's memo keeps the JSON these tags and mode read

    def walk(self) -> list[Grader]:
        return [self, *self.inner.walk()]

    def select_response(self, text: str, memo: dict[Any, Any] | None = None) -> str | None:
        """The text the inner grader grades, or None when nothing readable was selected.

        ``memo`` (a sample's) keeps the text's JSON value for other selections of the same
        tags and JSON mode, so every part of a weighted spec shares one parse.
        """
        value = self.select_value(text, memo)
        return None if value is None else _as_text(value)

    def select_value(self, text: str, memo: dict[Any, Any] | None = None) -> Any:
        """What :meth:`select_response` selects, before it is written as text (a JSON value, or the text)."""
        key = self._memo_key
        if memo is not None and key in memo:
            value = memo[key]
        else:
            if self.tags is not None:
                text = between_tags(text, *self.tags)
            if self.json_mode is None:
                return text
            value = parse_json(text, self.json_mode)
            if memo is not None:
                memo[key] = value
        if value is None:
            return None
        if self.response is not None:
            return _search(self.response, value)
        return value

    def select_reference(self, reference: Any, memo: dict[Any, Any] | None = None) -> Any:
        if self.reference is None:
            return reference
        if isinstance(reference, str):
            if memo is None:
                reference = parse_json(reference, "strict")
            elif _REFERENCE in memo:
                reference = memo[_REFERENCE]
            else:
                reference = memo[_REFERENCE] = parse_json(reference, "strict")
        value = _search(self.reference, reference)
        if value is None:
            raise MalformedItem(BAD_REFERENCE)
        return value

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        if self.json_mode is None and self.reference is None:
            return self._grade_between_tags(samples, deadline)
        selected: list[Sample] = []
        unreadable: list[float] = []  # the select_unreadable metric of each sample
        failures: dict[int, MalformedItem] = {}
        # A sample's memo shares what selections parse (its JSON, its reference's JSON) between parts.
        shares = self.json_mode is not None or self.reference is not None
        # A grader that reads JSON gets a selected object or array as it is, not written and read again.
        hand_down = self.inner.reads_json
        select_value, select_reference = self.select_value, self.select_reference
        append = selected.append
        for position, sample in enumerate(samples):
            memo = sample.memo
            if memo is None and shares:
                memo = sample.memo = {}
            value = select_value(sample.response, memo)
            unreadable.append(1.0 if value is None else 0.0)
            try:
                reference = select_reference(sample.reference, memo)
            except MalformedItem as exc:
                failures[position] = exc
                reference = sample.reference
            if hand_down and type(value) in _CONTAINERS:
                append(ParsedSample(sample.index, sample.id, value, reference, sample.item))
            else:
                text = "" if value is None else _as_text(value)
                append(Sample(sample.index, sample.id, text, reference, sample.item))
        outcomes = self.inner.grade_many(selected, deadline)
        for position, outcome in enumerate(outcomes):
            if type(outcome) is tuple:
                outcome[1].append({"name": UNREADABLE, "value": unreadable[position], "type": "Metric"})
        for position, failure in failures.items():
            outcomes[position] = failure
        return outcomes

    def _grade_between_tags(self, samples: Sequence[Sample], deadline: float | None) -> list[Outcome]:
        """:meth:`grade_many` for a selection of tags only: the text between them, which is always readable."""
        tags = self.tags
        selected: list[Sample] = []
        append = selected.append
        for sample in samples:
            response = sample.response if tags is None else between_tags(sample.response, *tags)
            # A response without the tags is graded as it is: the sample itself, not a copy of it.
            if response is sample.response:
                append(sample)
            else:
                append(Sample(sample.index, sample.id, response, sample.reference, sample.item))
        outcomes = self.inner.grade_many(selected, deadline)
        for outcome in outcomes:
            if type(outcome) is tuple:
                outcome[1].append({"name": UNREADABLE, "value": 0.0, "type": "Metric"})
        return outcomes


def build_select(inner: Grader, fields: Fields) -> Grader:
    """Wrap ``inner`` as the spec's ``select`` object (already opened as ``fields``) says."""
    tags_raw = fields.raw("tags", None)
    tags: tuple[str, str] | None = None
    if tags_raw is not None:
        if (
            not isinstance(tags_raw, list)
            or len(tags_raw) != 2
            or not all(isinstance(tag, str) and tag for tag in tags_raw)
        ):
            raise SpecError(fields.at("tags"), "must be two non-empty strings: [begin, end]")
        tags = (tags_raw[0], tags_raw[1])
    response = _compile(fields, "response")
    reference = _compile(fields, "reference")
    json_mode = fields.string("json", "strict" if response is not None else None, choices=list(JSON_MODES))
    fields.done()
    if tags is None and json_mode is None and reference is None:
        raise SpecError(fields.path, "select needs at least one of tags, json, response, reference")
    return Selected(inner, tags=tags, json_mode=json_mode, response=response, reference=reference)
