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
from operator import eq
from typing import Any, TypeVar, cast

from lambdas.reward.graders.base import (
    Graded,
    Grader,
    MalformedItem,
    finish_scored,
    scaled,
    score_fields,
)
from lambdas.reward.graders.text_similarity import lcs_length
from lambdas.reward.items import BAD_REFERENCE, ParsedSample, Sample
from lambdas.reward.spec import Fields, SpecError
from lambdas.reward.text import NONE, STRICT, common_count, extract_json, parse_json, squash

COMPONENTS = ("json_valid", "tool_names", "order", "arg_names", "arg_values")
DEFAULT_WEIGHTS = {"json_valid": 0.1, "tool_names": 0.3, "order": 0.1, "arg_names": 0.2, "arg_values": 0.3}
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")
MATCHES = ("multiset", "set")
ORDERS = ("subsequence", "positional")
COMPARES = ("normalized", "exact", "fuzzy")
_MAX_FUZZY_CHARS = 2000  # longer strings compare by equality: similarity is quadratic in length
_UNPARSEABLE = object()
_ABSENT = object()


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
    if "function" in call or "toolUse" in call:
        inner = call.get("function")
        if isinstance(inner, dict):
            call = inner
        elif isinstance(call.get("toolUse"), dict):
            call = call["toolUse"]
    name = call.get("name")
    if not isinstance(name, str):
        return None
    squashed = squash(name)
    if not squashed:  # empty once squashed: the name was blank
        return None
    arguments: Any = call.get("arguments", _ABSENT)
    if type(arguments) is dict:  # the usual call: its arguments already an object
        return Call(squashed, arguments)
    if arguments is _ABSENT:
        arguments = {}
        for key in _ARGUMENT_KEYS[1:]:
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
    return Call(squashed, arguments)


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
        return list(map(_as_call, value))
    return None


def _scalar(value: object) -> object:
    if isinstance(value, str):
        return _text_scalar(squash(value))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _text_scalar(text: str) -> object:
    """What a squashed string stands for: a boolean, null, a finite number, or the text itself."""
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


def _scalars_equal(left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return type(left) is type(right) and left == right
    if isinstance(left, float) and isinstance(right, float):
        return abs(left - right) <= 1e-9 * max(abs(left), abs(right)) + 1e-12
    return left == right


def values_equal(expected: Any, actual: Any) -> bool:
    """Equality after coercion (numbers, booleans, case/whitespace, list order)."""
    if isinstance(expected, dict) or isinstance(actual, dict):
        if not (isinstance(expected, dict) and isinstance(actual, dict)):
            return False
        want, got = _squashed_keys(expected), _squashed_keys(actual)
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
    return _scalars_equal(_scalar(expected), _scalar(actual))


def _json_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


class ValueMatch:
    """How argument values compare: a score in [0, 1] for one reference value and one response value."""

    def __init__(self, compare: str = "normalized", threshold: float = 0.8, rel_tol: float = 0.0) -> None:
        self.compare = compare
        self.threshold = threshold
        self.rel_tol = rel_tol

    def score(self, expected: Any, actual: Any) -> float:
        if type(expected) is str and type(actual) is str:
            if expected == actual:
                return 1.0  # the same string is equal under every comparison
            if not self.rel_tol and self.compare != "exact":
                # Two strings, compared as values_equal does (squashed, read as numbers or booleans).
                want, got = squash(expected), squash(actual)
                if _scalars_equal(_text_scalar(want), _text_scalar(got)):
                    return 1.0
                return self._similarity(want, got) if self.compare == "fuzzy" else 0.0
        if self.rel_tol:
            left, right = _scalar(expected), _scalar(actual)
            if type(left) is float and type(right) is float:
                return 1.0 if abs(left - right) <= self.rel_tol * max(abs(left), abs(right)) + 1e-12 else 0.0
        if self.compare == "exact":
            return 1.0 if _json_equal(expected, actual) else 0.0
        if values_equal(expected, actual):
            return 1.0
        if self.compare == "fuzzy" and isinstance(expected, str) and isinstance(actual, str):
            return self._similarity(squash(expected), squash(actual))
        return 0.0

    def _similarity(self, want: str, got: str) -> float:
        """The fuzzy score of two squashed strings: their similarity when it reaches the threshold, else 0."""
        if len(want) > _MAX_FUZZY_CHARS or len(got) > _MAX_FUZZY_CHARS or not want or not got:
            return 0.0
        # The ratio is 2 * (characters in matching blocks) / (both lengths). Those characters form a
        # common subsequence, so they are at most the characters in common (a count, cheap) and at
        # most the longest common subsequence (cheaper than the matching): below the threshold
        # with either bound, the matching cannot reach it either.
        total = len(want) + len(got)
        if 2.0 * common_count(want, got) / total < self.threshold:
            return 0.0
        if 2.0 * lcs_length(want, got) / total < self.threshold:
            return 0.0
        ratio = SequenceMatcher(None, want, got, autojunk=False).ratio()
        return ratio if ratio >= self.threshold else 0.0


NORMALIZED = ValueMatch()


_PLAIN_KEYS: dict[tuple[Any, ...], bool] = {}  # argument names seen so far: already squashed? (bounded)
_MAX_PLAIN_KEYS = 4096


def _squashed_keys(arguments: dict[Any, Any]) -> dict[Any, Any]:
    """``arguments`` with its names squashed: the dict itself when they already are (the usual case)."""
    keys = tuple(arguments)
    plain = _PLAIN_KEYS.get(keys)
    if plain is None:
        plain = all(type(key) is str and squash(key) == key for key in keys)
        if len(_PLAIN_KEYS) < _MAX_PLAIN_KEYS and all(type(key) is str and len(key) <= 64 for key in keys):
            _PLAIN_KEYS[keys] = plain
    return arguments if plain else {squash(str(k)): v for k, v in arguments.items()}


def _argument_scores(expected: Call, actual: Call, match: ValueMatch = NORMALIZED) -> tuple[float, float]:
    """``(arg_names F1, share of expected argument values matched)`` for one matched call."""
    want = expected.arguments
    got = actual.arguments
    if got is _UNPARSEABLE or want is _UNPARSEABLE:
        return 0.0, 0.0
    if not want and not got:
        return 1.0, 1.0
    if want == got:  # the same arguments: all strings (the usual case) match in full
        for value in want.values():
            if type(value) is not str:
                break
        else:
            return 1.0, 1.0
    want_keys = _squashed_keys(want)
    got_keys = _squashed_keys(got)
    common = want_keys.keys() & got_keys.keys()
    names = 2 * len(common) / (len(want_keys) + len(got_keys))
    if not want_keys:
        return names, 1.0 if not got_keys else 0.0
    score = match.score
    matched = sum([score(want_keys[key], got_keys[key]) for key in common])
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


def _positional(wanted: list[str], names: list[str | None]) -> float:
    """Share of positions where the response calls the reference's tool, over the longer list."""
    same = cast(int, sum(map(eq, wanted, names)))  # eq gives bools (typed Any)
    return same / max(len(wanted), len(names))


Components = tuple[float, float, float, float]  # tool_names, order, arg_names, arg_values
_ALL: Components = (1.0, 1.0, 1.0, 1.0)
_NOTHING: Components = (0.0, 0.0, 0.0, 0.0)


def compare_calls(
    expected: list[Call],
    actual: list[Call | None],
    match: str = "multiset",
    order: str = "subsequence",
    values: ValueMatch = NORMALIZED,
) -> Components:
    """Component scores (all but ``json_valid``: ``tool_names, order, arg_names, arg_values``) for a
    response's calls against the reference's."""
    if match == "set":
        expected = _first_of_each_name(expected)
        actual = _first_of_each_name(actual)
    if not expected:
        return _NOTHING if actual else _ALL
    if not actual:
        return _NOTHING
    names = [None if got is None else got.name for got in actual]
    wanted = [want.name for want in expected]
    if wanted == names and len(set(names)) == len(names):
        # The reference's calls in its order, each tool once: every call pairs with the one in its place.
        scores = [_argument_scores(want, cast(Call, got), values) for want, got in zip(expected, actual, strict=True)]
        return (
            1.0,
            1.0,
            sum([score[0] for score in scores]) / len(scores),
            sum([score[1] for score in scores]) / len(scores),
        )
    taken = [False] * len(actual)
    pairs: list[tuple[int, float, float]] = []  # (response position, arg_names, arg_values) in reference order
    for want in expected:
        best = None
        tool = want.name
        for position, name in enumerate(names):
            if name != tool or taken[position]:
                continue
            name_score, value_score = _argument_scores(want, cast(Call, actual[position]), values)
            if best is None or (value_score, name_score) > (best[2], best[1]):
                best = (position, name_score, value_score)
                if value_score == 1.0 and name_score == 1.0:
                    break  # a full match: no later call can do better
        if best is not None:
            taken[best[0]] = True
            pairs.append(best)
    if not pairs:
        return _NOTHING
    matched = len(pairs)
    calls = max(len(expected), len(actual))
    if order == "positional":
        in_order = _positional(wanted, names)
    else:
        in_order = _longest_increasing([p[0] for p in pairs]) / matched
    return (
        2 * matched / (len(expected) + len(actual)),
        in_order,
        sum([p[1] for p in pairs]) / calls,
        sum([p[2] for p in pairs]) / calls,
    )


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
        self._weights = tuple(self.weights[name] for name in COMPONENTS)  # in the order of COMPONENTS
        self.min_score = min_score
        self.max_score = max_score
        self.score_range = (min_score, max_score)

    def reference_calls(self, reference: object) -> list[Call]:
        if isinstance(reference, str):
            reference, quality = extract_json(reference)
            if quality == NONE:
                raise MalformedItem(BAD_REFERENCE)
        calls = calls_in(reference)
        if calls is None:
            raise MalformedItem(BAD_REFERENCE)
        for call in calls:
            if call is None or call.arguments is _UNPARSEABLE:
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
        names, order, arg_names, arg_values = compare_calls(expected, actual or [], self.match, self.order, self.values)
        weights = self._weights
        fraction = (
            sum(
                (
                    weights[0] * quality,
                    weights[1] * names,
                    weights[2] * order,
                    weights[3] * arg_names,
                    weights[4] * arg_values,
                )
            )
            / self._total_weight
        )
        # Every component is a float already (a quality constant, a share, or a sum of shares).
        metrics = [
            {"name": "tool_call", "value": fraction, "type": "Reward"},
            {"name": "json_valid", "value": quality, "type": "Metric"},
            {"name": "tool_names", "value": names, "type": "Metric"},
            {"name": "order", "value": order, "type": "Metric"},
            {"name": "arg_names", "value": arg_names, "type": "Metric"},
            {"name": "arg_values", "value": arg_values, "type": "Metric"},
        ]
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
