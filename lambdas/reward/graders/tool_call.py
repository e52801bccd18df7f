"""Tool-call grader: graded credit for calling the right tools, in order, with the right arguments.

Reference: ``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` (a bare list of
calls or a single call also work). The response is JSON in the same shapes,
possibly inside a Markdown fence; OpenAI (``{"function": {"name", "arguments":
"<json string>"}}``) and Converse (``{"toolUse": {"name", "input"}}``) call shapes
are understood too.

The score is a weighted mean of five components in [0, 1], each reported as a
metric so training curves show *what* the policy gets wrong:

- ``json_valid``: 1 for clean JSON (whole response or a fenced block), 0.5 when it
  had to be dug out of prose, 0 when there is none;
- ``tool_names``: F1 of the called tool names against the reference (multiset),
  so missing and extra calls both cost;
- ``order``: share of matched calls that appear in the reference's order;
- ``arg_names`` / ``arg_values``: per matched call, F1 of argument names and the
  share of reference arguments with an equal value, averaged over
  ``max(len(reference), len(response))`` calls.

Values compare after coercion: ``"5"`` equals ``5``, ``"true"`` equals ``true``,
strings ignore case and surrounding/repeated whitespace, lists ignore order.
A reference with no calls expects none: any response without calls scores full.

Options:

- ``match``: ``multiset`` (default: each reference call pairs with at most one
  response call, so a duplicated call is an extra call) or ``set`` (tool names
  compared as sets; repeating a call costs nothing: lenient, for references that
  list each tool once and answers that may repeat one);
- ``order``: ``subsequence`` (default: share of matched calls in the reference's
  relative order) or ``positional`` (share of positions holding the reference's
  tool, over the longer of the two lists: extra calls cost);
- ``arguments``: ``{"compare": "normalized" | "exact" | "fuzzy", "threshold": 0.8,
  "rel_tol": 0}``: ``normalized`` is the coercion above; ``exact`` is JSON
  equality; ``fuzzy`` gives a string value its similarity (difflib ratio of the
  case- and whitespace-folded strings) when at least ``threshold``, else 0;
  ``rel_tol`` accepts numbers within that relative tolerance;
- ``strict_json``: true gives no credit unless the response (or one fence that is
  all of it) is the JSON: prose-wrapped, duplicated or truncated JSON reads as no calls.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from difflib import SequenceMatcher
from typing import Any, TypeVar, cast

from lambdas.reward.graders.base import (
    Graded,
    Grader,
    MalformedItem,
    finish_scored,
    metric,
    reward,
    scaled,
    score_fields,
)
from lambdas.reward.items import BAD_REFERENCE, ParsedSample, Sample
from lambdas.reward.spec import Fields, SpecError
from lambdas.reward.text import NONE, STRICT, extract_json, parse_json, squash

COMPONENTS = ("json_valid", "tool_names", "order", "arg_names", "arg_values")
DEFAULT_WEIGHTS = {"json_valid": 0.1, "tool_names": 0.3, "order": 0.1, "arg_names": 0.2, "arg_values": 0.3}
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")
MATCHES = ("multiset", "set")
ORDERS = ("subsequence", "positional")
COMPARES = ("normalized", "exact", "fuzzy")
_MAX_FUZZY_CHARS = 2000  # longer strings compare by equality: similarity is quadratic in length
_UNPARSEABLE = object()


CallT = TypeVar("CallT", "Call", "Call | None")


class Call:
    __slots__ = ("name", "arguments")

    def __init__(self, name: str, arguments: Any) -> None:
        self.name = name
        self.arguments = arguments  # dict, or _UNPARSEABLE when the arguments string was not JSON


def _as_call(obj: object) -> Call | None:
    if not isinstance(obj, dict):
        return None
    call: dict[str, Any] = obj
    inner = call.get("function")
    if isinstance(inner, dict):
        call = inner
    elif isinstance(call.get("toolUse"), dict):
        call = call["toolUse"]
    name = call.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    arguments: Any = {}
    for key in _ARGUMENT_KEYS:
        if key in call:
            arguments = call[key]
            break
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            arguments = _UNPARSEABLE
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict) and arguments is not _UNPARSEABLE:
        arguments = _UNPARSEABLE
    return Call(squash(name), arguments)


def calls_in(value: object) -> list[Call | None] | None:
    """The calls a JSON value describes (``None`` entries for unusable calls), or None for a non-call shape."""
    if isinstance(value, dict):
        if "tool_calls" in value:
            value = value["tool_calls"]
            if value is None:
                return []
        else:
            call = _as_call(value)
            return [call] if call is not None else None
    if isinstance(value, list):
        return [_as_call(entry) for entry in value]
    return None


def _scalar(value: object) -> object:
    if isinstance(value, str):
        text = squash(value)
        if text in ("true", "false"):
            return text == "true"
        if text in ("null", "none"):
            return None
        try:
            number = float(text.replace(",", "")) if text and (text[0].isdigit() or text[0] in "-+.") else None
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
        return text
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def values_equal(expected: Any, actual: Any) -> bool:
    """Equality after coercion (numbers, booleans, case/whitespace, list order)."""
    if isinstance(expected, dict) or isinstance(actual, dict):
        if not (isinstance(expected, dict) and isinstance(actual, dict)):
            return False
        want = {squash(str(k)): v for k, v in expected.items()}
        got = {squash(str(k)): v for k, v in actual.items()}
        return want.keys() == got.keys() and all(values_equal(v, got[k]) for k, v in want.items())
    if isinstance(expected, list) or isinstance(actual, list):
        if not (isinstance(expected, list) and isinstance(actual, list)) or len(expected) != len(actual):
            return False
        if all(values_equal(a, b) for a, b in zip(expected, actual, strict=True)):
            return True
        unused = list(actual)
        for want in expected:
            for position, got in enumerate(unused):
                if values_equal(want, got):
                    del unused[position]
                    break
            else:
                return False
        return True
    left, right = _scalar(expected), _scalar(actual)
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return type(left) is type(right) and left == right
    if isinstance(left, float) and isinstance(right, float):
        return abs(left - right) <= 1e-9 * max(abs(left), abs(right)) + 1e-12
    return left == right


def _json_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def _common_characters(first: str, second: str) -> int:
    """How many characters two strings have in common, counted with repeats (a multiset intersection)."""
    if len(first) > len(second):
        first, second = second, first
    chars = set(first)
    return sum(map(min, map(first.count, chars), map(second.count, chars)))


class ValueMatch:
    """How argument values compare: a score in [0, 1] for one reference value and one response value."""

    def __init__(self, compare: str = "normalized", threshold: float = 0.8, rel_tol: float = 0.0) -> None:
        self.compare = compare
        self.threshold = threshold
        self.rel_tol = rel_tol

    def score(self, expected: Any, actual: Any) -> float:
        if type(expected) is str and type(actual) is str and expected == actual:
            return 1.0  # the same string is equal under every comparison
        if self.rel_tol:
            left, right = _scalar(expected), _scalar(actual)
            if type(left) is float and type(right) is float:
                return 1.0 if abs(left - right) <= self.rel_tol * max(abs(left), abs(right)) + 1e-12 else 0.0
        if self.compare == "exact":
            return 1.0 if _json_equal(expected, actual) else 0.0
        if values_equal(expected, actual):
            return 1.0
        if self.compare == "fuzzy" and isinstance(expected, str) and isinstance(actual, str):
            want, got = squash(expected), squash(actual)
            if len(want) > _MAX_FUZZY_CHARS or len(got) > _MAX_FUZZY_CHARS or not want or not got:
                return 0.0
            # The ratio never exceeds 2 * (characters in common) / (both lengths), which a count gives
            # cheaply: below the threshold, the slower matching cannot score either.
            if 2.0 * _common_characters(want, got) / (len(want) + len(got)) < self.threshold:
                return 0.0
            ratio = SequenceMatcher(None, want, got, autojunk=False).ratio()
            return ratio if ratio >= self.threshold else 0.0
        return 0.0


NORMALIZED = ValueMatch()


def _argument_scores(expected: Call, actual: Call, match: ValueMatch = NORMALIZED) -> tuple[float, float]:
    """``(arg_names F1, share of expected argument values matched)`` for one matched call."""
    want = expected.arguments
    got = actual.arguments
    if got is _UNPARSEABLE or want is _UNPARSEABLE:
        return 0.0, 0.0
    if not want and not got:
        return 1.0, 1.0
    want_keys = {squash(str(k)): v for k, v in want.items()}
    got_keys = {squash(str(k)): v for k, v in got.items()}
    common = want_keys.keys() & got_keys.keys()
    names = 2 * len(common) / (len(want_keys) + len(got_keys))
    if not want_keys:
        return names, 1.0 if not got_keys else 0.0
    matched = sum(match.score(want_keys[key], got_keys[key]) for key in common)
    return names, matched / len(want_keys)


def _longest_increasing(sequence: list[int]) -> int:
    tails: list[int] = []
    for value in sequence:
        position = bisect_left(tails, value)
        if position == len(tails):
            tails.append(value)
        else:
            tails[position] = value
    return len(tails)


def _first_of_each_name(calls: list[CallT]) -> list[CallT]:
    seen: set[str] = set()
    kept = []
    for call in calls:
        name = call.name if call is not None else None
        if name is None or name not in seen:
            kept.append(call)
            if name is not None:
                seen.add(name)
    return kept


def _positional(expected: list[Call], actual: list[Call | None]) -> float:
    same = sum(1 for want, got in zip(expected, actual, strict=False) if got is not None and got.name == want.name)
    return same / max(len(expected), len(actual))


def compare_calls(
    expected: list[Call],
    actual: list[Call | None],
    *,
    match: str = "multiset",
    order: str = "subsequence",
    values: ValueMatch = NORMALIZED,
) -> dict[str, float]:
    """Component scores (all but ``json_valid``) for a response's calls against the reference's."""
    if match == "set":
        expected = _first_of_each_name(expected)
        actual = _first_of_each_name(actual)
    if not expected:
        score = 1.0 if not actual else 0.0
        return {"tool_names": score, "order": score, "arg_names": score, "arg_values": score}
    if not actual:
        return {"tool_names": 0.0, "order": 0.0, "arg_names": 0.0, "arg_values": 0.0}
    unused = set(range(len(actual)))
    pairs: list[tuple[int, float, float]] = []  # (response position, arg_names, arg_values) in reference order
    for want in expected:
        best = None
        for position in sorted(unused):
            got = actual[position]
            if got is None or got.name != want.name:
                continue
            name_score, value_score = _argument_scores(want, got, values)
            if best is None or (value_score, name_score) > (best[2], best[1]):
                best = (position, name_score, value_score)
        if best is not None:
            unused.discard(best[0])
            pairs.append(best)
    if not pairs:
        return {"tool_names": 0.0, "order": 0.0, "arg_names": 0.0, "arg_values": 0.0}
    matched = len(pairs)
    calls = max(len(expected), len(actual))
    return {
        "tool_names": 2 * matched / (len(expected) + len(actual)),
        "order": _positional(expected, actual)
        if order == "positional"
        else _longest_increasing([p[0] for p in pairs]) / matched,
        "arg_names": sum(p[1] for p in pairs) / calls,
        "arg_values": sum(p[2] for p in pairs) / calls,
    }


class ToolCallGrader(Grader):
    kind = "tool_call"
    reads_json = True

    def __init__(
        self,
        *,
        weights: dict[str, float] | None = None,
        match: str = "multiset",
        order: str = "subsequence",
        values: ValueMatch = NORMALIZED,
        strict_json: bool = False,
        min_score: float = 0.0,
        max_score: float = 1.0,
    ) -> None:
        self.match = match
        self.order = order
        self.values = values
        self.strict_json = strict_json
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self._total_weight = sum(self.weights.values())
        self.min_score = min_score
        self.max_score = max_score
        self.score_range = (min_score, max_score)

    def reference_calls(self, reference: object) -> list[Call]:
        if isinstance(reference, str):
            reference, quality = extract_json(reference)
            if quality == NONE:
                raise MalformedItem(BAD_REFERENCE)
        calls = calls_in(reference)
        if calls is None or any(call is None or call.arguments is _UNPARSEABLE for call in calls):
            raise MalformedItem(BAD_REFERENCE)
        return cast(list[Call], calls)  # no None entries: checked just above

    def grade(self, sample: Sample) -> Graded:
        expected = self.reference_calls(sample.reference)
        if type(sample) is ParsedSample:  # JSON already read whole: as clean as JSON gets
            value, quality = sample.parsed, STRICT
        elif self.strict_json:
            value = parse_json(sample.response, "strict")
            quality = NONE if value is None else STRICT
        else:
            value, quality = extract_json(sample.response)
        actual = calls_in(value) if quality != NONE else None
        if not expected and not actual:
            # No call expected and none made: plain text is a fine answer, JSON is not required.
            quality = 1.0
        components = compare_calls(expected, actual or [], match=self.match, order=self.order, values=self.values)
        components["json_valid"] = quality
        weights = self.weights
        fraction = sum(weights[name] * components[name] for name in COMPONENTS) / self._total_weight
        metrics = [reward("tool_call", fraction)]
        metrics.extend(metric(name, components[name]) for name in COMPONENTS)
        return scaled(fraction, self.min_score, self.max_score), metrics


def build(fields: Fields, context: object) -> ToolCallGrader:
    raw = fields.raw("weights", None)
    weights = dict(DEFAULT_WEIGHTS)
    if raw is not None:
        inner = Fields(raw, fields.at("weights"))
        for name in COMPONENTS:
            weights[name] = inner.number(name, DEFAULT_WEIGHTS[name], minimum=0)
        inner.done()
        if sum(weights.values()) <= 0:
            raise SpecError(fields.at("weights"), "at least one weight must be > 0")
    values = NORMALIZED
    raw_arguments = fields.raw("arguments", None)
    if raw_arguments is not None:
        inner = Fields(raw_arguments, fields.at("arguments"))
        values = ValueMatch(
            inner.string("compare", "normalized", choices=list(COMPARES)),
            inner.number("threshold", 0.8, minimum=0, maximum=1),
            inner.number("rel_tol", 0.0, minimum=0),
        )
        inner.done()
    grader = ToolCallGrader(
        weights=weights,
        match=fields.string("match", "multiset", choices=list(MATCHES)),
        order=fields.string("order", "subsequence", choices=list(ORDERS)),
        values=values,
        strict_json=fields.boolean("strict_json", False),
        **score_fields(fields),
    )
    return finish_scored(fields, grader)
