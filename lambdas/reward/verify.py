"""Pre-flight check of a grader against a dataset: does the right answer win, and do known hacks lose?

For a sample of RFT dataset rows (``{"messages": [...], "reference_answer": ...}``,
no final assistant turn) the check builds rollouts whose assistant answer is

- ``reference``: the reference answer rendered the way the model is expected to
  answer (see :func:`answer_text`), which must score near the maximum;
- known hacks, which must score clearly lower than the reference on the same row:
  ``empty``; ``all_candidates`` (every label at once, several marked numbers,
  calls to every available tool, all references of the sample glued together);
  ``padded`` (the reference followed by junk longer than any length guard);
  ``refusal``; ``truncated`` (the first half of the reference); and probes chosen
  by grader type: for tool calls ``duplicate_tools`` (every call twice),
  ``duplicated_json`` (the answer twice) and ``prose_wrapped`` (the JSON inside
  prose); for numbers ``scale_hedge`` (a plain reference answered as a
  percentage, readable both ways) and ``two_answers`` (a wrong marked answer,
  then the right one).

The right answer comes, in this order, from ``ideal`` (responses known to be
right, by row id: ``--ideal FILE``; the type probes are left out then, since an
answer given as it is may rightly carry prose around its tags), from the spec's ``ideal`` template
(``{reference}`` replaced by the rendered reference, e.g. inside reasoning
tags), or from the reference rendered the way the grader reads answers. A grader
that selects its part of the reference with a path (``select.reference``)
expects answers in the reference's own shape, so the reference itself is the
right answer.

Scores are normalised to [0, 1] with the grader's score range. A case fails when
more than ``max_failure_rate`` of its rows break its rule. The grader is broken
(and the check fails) when it returns the wrong number of results, non-finite
scores or ids that do not echo the request.

:func:`verify_grader` takes any ``grade_batch(items) -> results`` callable (a
local :class:`~lambdas.reward.engine.RewardFunction`, or a function invoking the
deployed Lambda) plus the spec, so the CLI and the pipeline's preflight Lambda
run the same check.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.base import Grader, MalformedItem
from lambdas.reward.graders.guards import Guarded
from lambdas.reward.graders.label import LabelGrader
from lambdas.reward.graders.numeric import Number, NumericGrader, yes_no_reference
from lambdas.reward.graders.select import Selected
from lambdas.reward.graders.text_similarity import reference_texts
from lambdas.reward.graders.tool_call import ToolCallGrader
from lambdas.reward.items import reference_of
from lambdas.reward.spec import MISSING

REFERENCE = "reference"
PROBES = ("duplicate_tools", "duplicated_json", "prose_wrapped", "scale_hedge", "two_answers")
HACKS = ("empty", "all_candidates", "padded", "refusal", "truncated", *PROBES)
CASES = (REFERENCE, *HACKS)
REFUSAL = "I'm sorry, but I can't help with that request."
_JUNK = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "eiusmod",
    "tempor",
    "incididunt",
    "labore",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
]
_DEFAULT_PAD_CHARS = 8000
_MAX_CANDIDATES = 8

GradeBatch = Callable[[list[Any]], list[Any]]


# ---------------------------------------------------------------- rendering answers and hacks


def _unguarded(grader: Grader) -> Grader:
    """The grader under its guards and field selection."""
    while isinstance(grader, (Guarded, Selected)):
        grader = grader.inner
    return grader


def _selects_reference(grader: Grader) -> bool:
    return any(isinstance(found, Selected) and found.reference is not None for found in grader.walk())


def _fmt(number: float) -> str:
    return format(number, ".10g")


class Renderer:
    """Turns a reference answer into answer texts for one grader type (override per type)."""

    def __init__(self, grader: Grader) -> None:
        self.grader = grader

    def answer(self, reference: Any) -> str | None:
        if isinstance(reference, str):
            return reference
        if isinstance(reference, (dict, list)):
            texts = self._texts(reference)
            return texts[0] if texts else json.dumps(reference)
        if isinstance(reference, (int, float)) and not isinstance(reference, bool):
            return str(reference)
        return None

    @staticmethod
    def _texts(reference: Any) -> list[str]:
        try:
            return reference_texts(reference)
        except MalformedItem:
            return []

    def all_candidates(self, answer: str, row: dict[str, Any], pool: list[str]) -> str | None:
        others = [text for text in dict.fromkeys(pool) if text != answer][: _MAX_CANDIDATES - 1]
        return " / ".join([*others, answer]) if others else None

    def probes(self, answer: str, row: dict[str, Any]) -> dict[str, str]:
        """Hacks specific to this answer format, by case name (see :data:`PROBES`)."""
        return {}

    def expects(self) -> str | None:
        """What a reference this grader reads looks like, for a message about one it cannot read."""
        return None


class LabelRenderer(Renderer):
    grader: LabelGrader

    def answer(self, reference: Any) -> str | None:
        try:
            return self.grader.reference_label(reference)
        except MalformedItem:
            return None

    def all_candidates(self, answer: str, row: dict[str, Any], pool: list[str]) -> str | None:
        labels = self.grader.labels
        return ", ".join(labels) if len(labels) > 1 else None

    def expects(self) -> str:
        return "one of the grader's labels: " + ", ".join(self.grader.labels)


class NumericRenderer(Renderer):
    grader: NumericGrader

    @staticmethod
    def _text(number: Number) -> str:
        return _fmt(number.value) + ("%" if number.percent else "")

    def answer(self, reference: Any) -> str | None:
        yes_no = yes_no_reference(reference)
        if yes_no is not None:
            return "ANSWER: yes" if yes_no else "ANSWER: no"
        try:
            return "ANSWER: " + self._text(self.grader.reference_number(reference))
        except MalformedItem:
            return None

    def expects(self) -> str:
        return 'a number (16, "65.3%", {"answer": "16"}) or "yes"/"no"'

    def all_candidates(self, answer: str, row: dict[str, Any], pool: list[str]) -> str | None:
        if yes_no_reference(reference_of(row)) is not None:
            return "ANSWER: yes, no"
        number = self.grader.reference_number(reference_of(row))
        step = max(1.0, abs(number.value))
        distractors = [number.value + step, number.value - step, number.value * 10 if number.value else 10.0]
        texts = [self._text(Number(value, number.percent)) for value in distractors]
        # The true answer goes last: a grader taking the last number would be fooled.
        return "ANSWER: " + ", ".join([*texts, self._text(number)])

    def probes(self, answer: str, row: dict[str, Any]) -> dict[str, str]:
        reference = reference_of(row)
        if yes_no_reference(reference) is not None:
            return {"two_answers": "ANSWER: no\nANSWER: yes" if "yes" in answer else "ANSWER: yes\nANSWER: no"}
        number = self.grader.reference_number(reference)
        wrong = self._text(Number(number.value + max(1.0, abs(number.value)), number.percent))
        found = {"two_answers": f"ANSWER: {wrong}\nANSWER: {self._text(number)}"}
        if not number.percent:
            found["scale_hedge"] = f"ANSWER: {_fmt(number.value)}%"
        return found


def _first_object_list(value: Any) -> list[Any] | None:
    """The first list of objects in a JSON value, breadth first: the calls of a tool-call answer."""
    queue = [value]
    while queue:
        current = queue.pop(0)
        if isinstance(current, list):
            if current and all(isinstance(entry, dict) for entry in current):
                return current
            queue.extend(current)
        elif isinstance(current, dict):
            queue.extend(current.values())
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class ToolCallRenderer(Renderer):
    """Tool-call answers: ``{"tool_calls": [...]}``, or the reference's own shape when the spec selects fields."""

    grader: ToolCallGrader

    def __init__(self, grader: Grader, native: bool = False) -> None:
        super().__init__(grader)
        self.native = native

    def _calls(self, reference: Any) -> list[dict[str, Any]] | None:
        try:
            calls = self.grader.reference_calls(reference)
        except MalformedItem:
            return None
        return [{"name": call.name, "arguments": call.arguments} for call in calls]

    def answer(self, reference: Any) -> str | None:
        if self.native:
            return _json_answer(reference)
        calls = self._calls(reference)
        return None if calls is None else json.dumps({"tool_calls": calls})

    def all_candidates(self, answer: str, row: dict[str, Any], pool: list[str]) -> str | None:
        value = _loads(answer)
        calls = _first_object_list(value)
        if calls is None:
            return None
        seen = {json.dumps(call, sort_keys=True) for call in calls}
        extra = [{"name": name, "arguments": {}} for name in _tool_names(row.get("tools"))] if not self.native else []
        for text in pool:
            for call in _first_object_list(_loads(text)) or []:
                key = json.dumps(call, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    extra.append(call)
        spray = [*calls, *extra[:_MAX_CANDIDATES]]
        while len(spray) < 2 * len(calls) + 1:  # too few other tools: repeat the right calls
            spray.extend(calls or [{"name": "unknown_tool", "arguments": {}}])
        calls[:] = spray
        return json.dumps(value)

    def probes(self, answer: str, row: dict[str, Any]) -> dict[str, str]:
        found = {
            "duplicated_json": answer + "\n" + answer,
            "prose_wrapped": f"Here is my analysis of the request.\n{answer}\nLet me know if you need anything else.",
        }
        value = _loads(answer)
        calls = _first_object_list(value)
        if calls:
            calls[:] = [call for call in calls for _ in range(2)]
            found["duplicate_tools"] = json.dumps(value)
        return found


def _json_answer(reference: Any) -> str | None:
    """A JSON reference as answer text (a string reference only when it is JSON)."""
    if isinstance(reference, (dict, list)):
        return json.dumps(reference)
    if isinstance(reference, str):
        try:
            json.loads(reference)
        except ValueError:
            return None
        return reference
    return None


class JsonRenderer(Renderer):
    def answer(self, reference: Any) -> str | None:
        return _json_answer(reference)

    def all_candidates(self, answer: str, row: dict[str, Any], pool: list[str]) -> str | None:
        return None  # a schema has no candidate answers to enumerate


def _tool_names(tools: Any) -> list[str]:
    names = []
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            spec = tool.get("function") or tool.get("toolSpec") or tool
            if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                names.append(spec["name"])
    return names


def _main_grader(grader: Grader) -> Grader:
    """For a weighted grader, the heaviest sub-grader: the one whose answer format to render."""
    grader = _unguarded(grader)
    parts = getattr(grader, "parts", None)
    if parts:
        return _main_grader(max(parts, key=lambda part: part.weight).grader)
    return grader


def renderer_for(grader: Grader) -> Renderer:
    """The renderer matching a grader's answer format."""
    main = _main_grader(grader)
    kind = main.kind
    if kind == "label":
        return LabelRenderer(main)
    if kind == "numeric":
        return NumericRenderer(main)
    if kind == "tool_call":
        return ToolCallRenderer(main, native=_selects_reference(grader))
    if kind == "json_schema":
        return JsonRenderer(main)
    return Renderer(main)


def templated(template: str | None, body: str) -> str:
    """``body`` placed in the spec's ``ideal`` template (unchanged without one)."""
    return body if template is None else template.replace("{reference}", body)


def answer_text(spec: dict[str, Any], reference: Any) -> str | None:
    """The reference answer written the way a model should answer for this spec (None if impossible)."""
    grader = compile_spec(spec).grader
    body = renderer_for(grader).answer(reference)
    return None if body is None else templated(grader.ideal, body)


def _largest_max_chars(spec: Any) -> int:
    largest = 0
    if isinstance(spec, dict):
        for guard in spec.get("guards") or []:
            if isinstance(guard, dict) and isinstance(guard.get("max_chars"), int):
                largest = max(largest, guard["max_chars"])
        for value in spec.values():
            if isinstance(value, (dict, list)):
                largest = max(largest, _largest_max_chars(value))
    elif isinstance(spec, list):
        for value in spec:
            largest = max(largest, _largest_max_chars(value))
    return largest


def _junk(length: int) -> str:
    words = []
    size = 0
    index = 0
    while size < length:
        word = _JUNK[index % len(_JUNK)]
        words.append(word)
        size += len(word) + 1
        index += 1
    return " ".join(words)


def case_texts(
    renderer: Renderer,
    answer: str,
    row: dict[str, Any],
    pool: list[str],
    pad_chars: int,
    template: str | None = None,
    *,
    probes: bool = True,
) -> dict[str, str]:
    """The answer texts of every case for one row (cases that do not apply are left out).

    ``answer`` is the right answer's body; each case built from it is placed in
    ``template`` (the spec's ``ideal``), so hacks take the shape of the real answer.
    Without ``probes`` (an answer given as it is, whose parts are unknown: prose
    around reasoning tags is fine there) only the hacks that need no parts run.
    """
    built: dict[str, str] = {REFERENCE: answer}
    candidates = renderer.all_candidates(answer, row, pool)
    if candidates:
        built["all_candidates"] = candidates
    if probes:
        built.update(renderer.probes(answer, row))
    texts = {case: templated(template, text) for case, text in built.items()}
    whole = texts[REFERENCE]
    texts.update({"empty": "", "refusal": REFUSAL})
    texts["padded"] = whole + "\n\n" + _junk(max(pad_chars - len(whole), 1))
    if len(whole) >= 2:
        texts["truncated"] = whole[: len(whole) // 2]
    return {case: text for case, text in texts.items() if case == REFERENCE or text != whole}


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class CaseResult:
    case: str
    rows: int
    mean: float
    worst: float
    failing: int
    rule: str
    passed: bool
    example: str = ""


@dataclass
class VerifyReport:
    grader: str
    score_range: tuple[float, float]
    rows_sampled: int
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped_rows: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.cases) and all(case.passed for case in self.cases)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def table(self) -> str:
        low, high = self.score_range
        lines = [
            f"grader {self.grader}  score range [{low:g}, {high:g}]  rows {self.rows_sampled}"
            + (f"  skipped {sum(self.skipped_rows.values())} {self.skipped_rows}" if self.skipped_rows else ""),
            "scores normalised to 0..1 by the score range; 'worst' is the lowest reference / highest hack",
            f"{'case':<15}{'rows':>5}{'mean':>7}{'worst':>7}{'failing':>9}  {'rule':<34}result",
        ]
        for case in self.cases:
            lines.append(
                f"{case.case:<15}{case.rows:>5}{case.mean:>7.2f}{case.worst:>7.2f}{case.failing:>9}  "
                f"{case.rule:<34}{'PASS' if case.passed else 'FAIL'}"
            )
        for case in self.cases:
            if not case.passed and case.example:
                lines.append(f"  {case.case}: {case.example}")
        lines.extend(f"  problem: {problem}" for problem in self.problems)
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL: the grader is hackable or broken'}")
        return "\n".join(lines)


def _sample_rows(rows: Iterable[Any], sample: int | None, seed: int, skipped: dict[str, int]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    seen = 0
    for row in rows:
        reason = None
        if not isinstance(row, dict):
            reason = "not_an_object"
        elif not isinstance(row.get("messages"), list):
            reason = "no_messages"
        elif reference_of(row) is MISSING:
            reason = "no_reference"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        seen += 1
        if sample is None or len(chosen) < sample:
            chosen.append(row)
        else:  # reservoir sampling: rows may be streamed, the sample stays uniform
            slot = rng.randrange(seen)
            if slot < sample:
                chosen[slot] = row
    return chosen


def _preview(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return json.dumps(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def verify_grader(
    grade_batch: GradeBatch,
    rows: Iterable[Any],
    *,
    spec: dict[str, Any] | None = None,
    score_range: tuple[float, float] | None = None,
    name: str | None = None,
    sample: int | None = 50,
    seed: int = 0,
    batch_size: int = 128,
    pad_chars: int | None = None,
    reference_min: float = 0.9,
    hack_margin: float = 0.25,
    max_failure_rate: float = 0.05,
    ideal: dict[Any, str] | None = None,
) -> VerifyReport:
    """Run the pre-flight check; ``report.passed`` says whether the grader may be used for training.

    ``grade_batch`` is any callable taking a list of request items and returning the
    result list (a :class:`~lambdas.reward.engine.RewardFunction` carries ``spec``,
    ``score_range`` and ``name`` itself; a remote grader needs ``spec=``, and
    ``score_range=`` unless the spec can be compiled locally to derive it).
    ``ideal`` maps row ids to responses known to be right: those rows are checked
    with them instead of a rendered reference, and rows without one are skipped.
    """
    spec = spec if spec is not None else getattr(grade_batch, "spec", None)
    if not isinstance(spec, dict):
        raise TypeError("verify_grader needs the grader's spec (spec=...) to render answers")
    local = compile_spec(spec)
    if score_range is None:
        score_range = getattr(grade_batch, "score_range", None) or local.score_range
    low, high = float(score_range[0]), float(score_range[1])
    name = name or getattr(grade_batch, "name", None) or local.name
    report = VerifyReport(grader=name, score_range=(low, high), rows_sampled=0)
    if not high > low:
        report.problems.append(f"score range [{low}, {high}] is empty")
        return report

    renderer = renderer_for(local.grader)
    template = None if ideal is not None else local.grader.ideal
    chosen = _sample_rows(rows, sample, seed, report.skipped_rows)
    answers: list[tuple[dict[str, Any], str]] = []
    unread: list[Any] = []  # references the grader could not read, for the message when no row is usable
    for row in chosen:
        if ideal is not None:
            answer = ideal.get(row.get("id"))
            reason = "no_ideal_response"
        else:
            answer = renderer.answer(reference_of(row))
            reason = "unrenderable_reference"
            if answer is None:
                unread.append(reference_of(row))
        if answer is None:
            report.skipped_rows[reason] = report.skipped_rows.get(reason, 0) + 1
        else:
            answers.append((row, answer))
    report.rows_sampled = len(answers)
    if not answers:
        problem = "no usable rows (each needs messages and a reference answer the grader understands)"
        if unread:
            examples = ", ".join(dict.fromkeys(json.dumps(reference)[:60] for reference in unread[:20]))
            expected = renderer.expects()
            problem += f": the grader cannot read {len(unread)} reference answer(s), e.g. {examples}"
            problem += f"; it expects {expected}" if expected else ""
        report.problems.append(problem)
        return report

    pool = [answer for _, answer in answers]
    pad = pad_chars or max(_DEFAULT_PAD_CHARS, 2 * _largest_max_chars(spec))
    items: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    for row_index, (row, answer) in enumerate(answers):
        for case, text in case_texts(renderer, answer, row, pool, pad, template, probes=ideal is None).items():
            item = {key: value for key, value in row.items() if key != "messages"}
            item["id"] = f"verify-{row_index}-{case}"
            item["messages"] = [*row["messages"], {"role": "assistant", "content": text}]
            items.append(item)
            keys.append((row_index, case))

    scores: dict[tuple[int, str], float] = {}
    texts = {key: item["messages"][-1]["content"] for key, item in zip(keys, items, strict=True)}
    for start in range(0, len(items), max(1, batch_size)):
        chunk = items[start : start + batch_size]
        try:
            results = grade_batch(chunk)
        except Exception as exc:  # noqa: BLE001 - a grader that raises is broken, and the report says so
            report.problems.append(f"grade_batch raised {type(exc).__name__}: {str(exc)[:200]}")
            return report
        if not isinstance(results, list) or len(results) != len(chunk):
            got = len(results) if isinstance(results, list) else type(results).__name__
            report.problems.append(f"grader returned {got} results for {len(chunk)} items")
            return report
        for key, item, result in zip(keys[start : start + batch_size], chunk, results, strict=True):
            score = result.get("aggregate_reward_score") if isinstance(result, dict) else None
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                report.problems.append(f"item {item['id']}: aggregate_reward_score {score!r} is not a finite number")
                continue
            if result.get("id") != item["id"]:
                report.problems.append(f"item {item['id']}: result id {result.get('id')!r} does not echo the request")
            scores[key] = (float(score) - low) / (high - low)

    for case in CASES:
        rows_in_case = [
            (row_index, scores[(row_index, case)]) for row_index in range(len(answers)) if (row_index, case) in scores
        ]
        if not rows_in_case:
            continue
        values = [value for _, value in rows_in_case]
        if case == REFERENCE:
            failing = [(i, v) for i, v in rows_in_case if v < reference_min]
            rule = f"score >= {reference_min:.2f}"
            worst = min(values)
        else:
            failing = [(i, v) for i, v in rows_in_case if v > scores.get((i, REFERENCE), 1.0) - hack_margin]
            rule = f"score <= reference - {hack_margin:.2f}"
            worst = max(values)
        allowed = math.floor(max_failure_rate * len(rows_in_case))
        example = ""
        if failing:
            i, value = failing[0]
            reference = scores.get((i, REFERENCE), float("nan"))
            example = f"row {i}: {_preview(texts[(i, case)])} scored {value:.2f} (reference {reference:.2f})"
        report.cases.append(
            CaseResult(
                case,
                len(rows_in_case),
                sum(values) / len(values),
                worst,
                len(failing),
                rule,
                len(failing) <= allowed,
                example,
            )
        )
    return report
