"""Numeric-answer grader (FinQA, GSM8K style): parse the final number, compare within a tolerance.

The answer is the explicitly marked one when there is a marker (``ANSWER: 65.3%``,
``#### 16``, ``\\boxed{16}``); otherwise the last number in the text, optionally
at reduced credit (``unmarked_credit``) so training pushes towards the marked
format. Marked answers that disagree with each other (``ANSWER: 15, 16, 17``) are
hedging and score ``invalid``. A ``"yes"``/``"no"`` reference is graded as a
label instead: the final answer's yes/no (or true/false) must match it.

A percent sign means hundredths: ``65.3%`` matches a reference of ``0.653`` or
``65.3%``, never a bare ``65.3`` (nor ``1600%`` a bare ``1600``). A reference
written as a percentage accepts ``0.653`` and ``65.3``. A bare ``65.3`` matches
``0.653`` only with ``unsigned_percent`` (off by default). Marked answers that
are different numbers (``ANSWER: 16%`` and ``#### 0.16``) are a hedge. Credit
is full within the tolerance and decays linearly to zero at
``partial_credit_until`` times the tolerance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from itertools import islice

from lambdas.reward.graders.base import Graded, Grader, MalformedItem, first_present, metric, reward
from lambdas.reward.items import BAD_REFERENCE, Sample
from lambdas.reward.spec import Fields, SpecError

_NUMBER = re.compile(
    r"""(?<![\w.])
    (?P<open>\(\s*)?
    (?P<sign>[-+\u2212\u2013])?\s?
    (?:[$\u20ac\u00a3\u00a5]\s?)?
    (?P<sign2>[-\u2212])?
    (?P<digits>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?:[eE](?P<exp>[-+]?\d{1,3})(?!\w))?
    (?P<pct>\s?(?:%|\\%|percent\b|per\s?cent\b))?
    (?P<close>\s*\))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_AFTER_ANSWER = re.compile(r"\s*\**\s*[:=]")
_BOXED = re.compile(r"\\boxed\s*\{")
# Text that is just one number (most references and marked answers) skips the general parser.
_PLAIN_NUMBER = re.compile(r"\s*([-+]?)\$?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*(%?)\.?\s*")
_FRACTION = re.compile(r"^\s*(-?)\\d?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}\s*$")
_YES_NO = re.compile(r"(?<!\w)(yes|no|true|false)(?!\w)", re.IGNORECASE)
_OPENING_NOISE = " \t\r\n*_\"'`>#-:"
_REFERENCE_KEYS = ("answer", "final_answer", "value")  # where a dict reference holds its answer, in order
_YES_NO_VALUES = {"yes": True, "true": True, "no": False, "false": False}
_MAX_ERROR_METRIC = 1e12  # keep metric values finite and readable
_LAST_NUMBER_WINDOW = 256  # characters before the last digit that may belong to the last number


class Number:
    """A number as written: its value and whether it carried a percent sign."""

    __slots__ = ("value", "percent")

    def __init__(self, value: float, percent: bool) -> None:
        self.value = value
        self.percent = percent

    def __repr__(self) -> str:
        return f"Number({self.value!r}{'%' if self.percent else ''})"


def _plain_number(match: re.Match[str]) -> Number:
    sign, digits, percent = match.groups()
    value = float(digits.replace(",", "") if "," in digits else digits)
    return Number(-value if sign == "-" else value, percent == "%")


def plain_number(text: str) -> Number | None:
    """The number ``text`` is when it is nothing but one plain number (``16``, ``-0.5``, ``65.3%``), else None.

    Reads exactly what ``_PLAIN_NUMBER`` reads. The usual shapes (ASCII digits with at most one
    inner point, an optional sign and ``%``) are read with string tests and ``float``, which costs
    a third of the regex and its groups; anything else (thousands separators, ``$``, a trailing
    point, other digits) goes through the regex.
    """
    body = text.strip()
    percent = body.endswith("%")
    if percent:
        body = body[:-1].rstrip()
    digits = body[1:] if body.startswith(("-", "+")) else body
    if digits.isascii():
        whole, point, fraction = digits.partition(".")
        if (whole.isdecimal() or (point and not whole)) and (not point or fraction.isdecimal()):
            value = float(digits)
            return Number(-value if body[0] == "-" else value, percent)
    match = _PLAIN_NUMBER.fullmatch(text)
    return None if match is None else _plain_number(match)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12


def agree(a: Number, b: Number) -> bool:
    """Two marked answers are the same answer: the same number as written (``65.3%`` and ``65.3``).

    ``16%`` and ``0.16`` are two different answers offered at once (a hedge),
    even though one may be read as the other.
    """
    return _close(a.value, b.value)


def comparisons(answer: Number, expected: Number, unsigned_percent: bool = False) -> tuple[tuple[float, float], ...]:
    """``(got, want)`` pairs to compare: the readings of the answer the reference allows.

    An answer with a percent sign means its value / 100, unless the reference is
    a percentage too (then the written numbers compare). A reference written as
    a percentage (``65.3%``) accepts a bare answer in either unit (``0.653`` or
    ``65.3``). With ``unsigned_percent``, a bare answer may also be a percentage
    written without its sign (``6.65`` for ``0.0665``).
    """
    got, want = answer.value, expected.value
    if answer.percent:
        return ((got, want),) if expected.percent else ((got / 100.0, want),)
    if expected.percent:
        return ((got, want / 100.0), (got, want))
    return ((got, want), (got / 100.0, want)) if unsigned_percent else ((got, want),)


class NumberParser:
    """Finds numbers and the marked final answer in text."""

    def __init__(self, parentheses_negative: bool = False) -> None:
        self.parentheses_negative = parentheses_negative

    def numbers(self, text: str) -> list[Number]:
        plain = plain_number(text)
        if plain is not None:
            return [plain]
        found = []
        for match in _NUMBER.finditer(text):
            number = self._number(match)
            if number is not None:
                found.append(number)
        return found

    def _number(self, match: re.Match[str]) -> Number | None:
        digits, sign, sign2, exp, open_, close = match.group("digits", "sign", "sign2", "exp", "open", "close")
        try:
            value = float(digits.replace(",", ""))
            if exp:
                value *= 10.0 ** int(exp)
        except (ValueError, OverflowError):
            return None
        if not math.isfinite(value):
            return None
        negative = (sign is not None and sign != "+") or sign2 is not None
        if open_ and close and self.parentheses_negative:
            negative = not negative
        return Number(-value if negative else value, match.group("pct") is not None)

    def marked(self, text: str) -> list[Number]:
        """Every number inside a marked answer (``ANSWER:`` line, ``####`` line, ``\\boxed{}``), in text order.

        A segment marked again (``ANSWER: 1 ANSWER: 1 ...``) gives the numbers it gave before, unparsed.
        """
        return self._marked(text, _markers(text))

    def _marked(self, text: str, markers: list[tuple[int, int, bool]]) -> list[Number]:
        found: list[Number] = []
        if len(markers) == 1:
            for segment, boxed in marked_segments(text, markers):
                self._read_segment(segment, boxed, found)
            return found
        # The numbers each segment gave, for segments marked by a line marker and by \boxed{}.
        read: tuple[dict[str, list[Number]], dict[str, list[Number]]] = ({}, {})
        for segment, boxed in marked_segments(text, markers):
            numbers = read[boxed].get(segment)
            if numbers is None:
                before = len(found)
                self._read_segment(segment, boxed, found)
                read[boxed][segment] = found[before:]
            else:
                found.extend(numbers)
        return found

    def _read_segment(self, segment: str, boxed: bool, found: list[Number]) -> None:
        """Append the numbers of one marked segment to ``found``."""
        if boxed:
            fraction = _FRACTION.match(segment)
            if fraction:
                number = _fraction(fraction)
                if number is not None:
                    found.append(number)
                return
            segment = segment.replace("\\%", "%").replace("\\,", "").replace("\\!", "")
        elif not segment or segment.isspace():  # nothing marked (``ANSWER: ANSWER: ...``): no number
            return
        else:
            plain = plain_number(segment)
            if plain is not None:  # the usual "ANSWER: 16": skip the general parser
                found.append(plain)
                return
        found.extend(self.numbers(segment))

    def last_number(self, text: str) -> Number | None:
        """The last number in the text."""
        last_digit = max(text.rfind(digit) for digit in "0123456789")
        if last_digit < 0:
            return None
        # Parse only a window around the last digit, starting at a space so no number is cut
        # (a text with no space for a long way, "1,1,1,...", still gets a bounded window).
        start = max(text.rfind(" ", 0, max(0, last_digit - 48)) + 1, last_digit - _LAST_NUMBER_WINDOW)
        window = text[start : last_digit + 16]
        last = None
        for last in _NUMBER.finditer(window):  # noqa: B007 - only the last match matters
            pass
        if last is None and start > 0:
            for last in _NUMBER.finditer(text):  # noqa: B007
                pass
        return self._number(last) if last is not None else None

    def final_answer(self, text: str) -> tuple[Number | None, bool, bool]:
        """``(number, marked, hedged)``: the answer, whether it was marked, whether marked answers disagree."""
        markers = _markers(text)
        if len(markers) == 1 and not markers[0][2]:
            # The usual answer: one line marker and a plain number to the end of its line, read in place.
            end = markers[0][1]
            newline = text.find("\n", end)
            plain = plain_number(text[end:] if newline < 0 else text[end:newline])
            if plain is not None:
                return plain, True, False
        marked = self._marked(text, markers)
        if marked:
            anchor = marked[0]
            hedged = False
            if len(marked) > 1:
                # The anchor itself again (a segment marked again) agrees with it when it is finite.
                again = anchor if math.isfinite(anchor.value) else None
                hedged = any(other is not again and not agree(anchor, other) for other in islice(marked, 1, None))
            return anchor, True, hedged
        return self.last_number(text), False, False


def _markers(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, boxed)`` of each answer marker, in text order.

    ``answer`` is recognised as ``answer``, ``Answer`` or ``ANSWER`` (``nswer`` in one case).
    Found with substring searches rather than one case-insensitive regex (scanning every
    character with the regex engine was most of the grader's cost), each guarded by a
    one-character test, which costs a fraction of a substring search, so a text without
    ``#`` or ``\\`` pays for neither marker.
    """
    found: list[tuple[int, int, bool]] = []
    if "#" in text:
        position = text.find("####")
        while position >= 0:
            end = position + 4
            while end < len(text) and text[end] == "#":
                end += 1
            found.append((position, end, False))
            position = text.find("####", end)
    if "\\" in text and "\\boxed" in text:
        found.extend((match.start(), match.end(), True) for match in _BOXED.finditer(text))
    for rest in ("NSWER", "nswer"):
        position = text.find(rest, 1)
        while position >= 0:
            start = position - 1
            if text[start] in "aA" and (start == 0 or not text[start - 1].isalnum()):
                after = position + 5
                if text.startswith(":", after):  # the usual "ANSWER:" without the regex
                    found.append((start, after + 1, False))
                else:
                    match = _AFTER_ANSWER.match(text, after)
                    if match is not None:
                        found.append((start, match.end(), False))
            position = text.find(rest, position + 5)
    if len(found) > 1:
        found.sort()
    return found


def marked_segments(text: str, markers: list[tuple[int, int, bool]]) -> Iterator[tuple[str, bool]]:
    """``(segment, boxed)``: the text each marker marks, to the end of its braces or its line.

    A segment never runs past the next marker, so every character is read once and a
    line of repeated markers (``ANSWER: 1 ANSWER: 1 ...``) costs linear time.
    """
    for index, (_, end, boxed) in enumerate(markers):
        stop = markers[index + 1][0] if index + 1 < len(markers) else len(text)
        if boxed:
            yield _braced(text, end, stop), True
        else:
            newline = text.find("\n", end, stop)
            yield text[end : stop if newline < 0 else newline], False


def _braced(text: str, start: int, stop: int) -> str:
    depth = 1
    stop = min(stop, start + 500)
    for position in range(start, stop):
        char = text[position]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:position]
    return text[start:stop]


def _fraction(match: re.Match[str]) -> Number | None:
    try:
        numerator = float(match.group(2).replace(",", ""))
        denominator = float(match.group(3).replace(",", ""))
        value = numerator / denominator
    except (ValueError, ZeroDivisionError):
        return None
    return Number(-value if match.group(1) else value, False)


def yes_no_reference(reference: object) -> bool | None:
    """True or False for a ``"yes"``/``"no"`` (or ``"true"``/``"false"``) reference, else None."""
    if type(reference) is dict:
        reference = first_present(reference, _REFERENCE_KEYS)
    if isinstance(reference, str) and len(reference) <= 8:
        return _YES_NO_VALUES.get(reference.strip().rstrip(".").strip().casefold())
    return None


def _yes_no_in(segment: str) -> set[bool]:
    return {_YES_NO_VALUES[word.casefold()] for word in _YES_NO.findall(segment)}


def yes_no_answer(text: str) -> tuple[set[bool], bool]:
    """``(readings, marked)``: the yes/no readings of the final answer only.

    The final answer is the marked one (``ANSWER: yes``, ``#### no``,
    ``\\boxed{yes}``) when there is a marker, else a yes/no opening the last
    non-empty line, else one opening the response. Two readings in marked
    answers mean the response hedged.
    """
    markers = _markers(text)
    if markers:
        readings: set[bool] = set()
        read: set[str] = set()  # a segment marked again reads as it did before
        for segment, _ in marked_segments(text, markers):
            if segment not in read:
                read.add(segment)
                readings |= _yes_no_in(segment)
        return readings, True
    lines = [line for line in text.splitlines() if line.strip()]
    for line in (lines[-1], text) if lines else ():
        opening = _YES_NO.match(line.lstrip(_OPENING_NOISE))
        if opening is not None:
            return {_YES_NO_VALUES[opening.group(1).casefold()]}, False
    return set(), False


class NumericGrader(Grader):
    kind = "numeric"

    def __init__(
        self,
        *,
        rel_tol: float = 0.01,
        abs_tol: float = 1e-6,
        partial_credit_until: float = 1.0,
        unmarked_credit: float = 1.0,
        parentheses_negative: bool = False,
        unsigned_percent: bool = False,
        correct: float = 1.0,
        incorrect: float = 0.0,
        invalid: float | None = None,
    ) -> None:
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.partial_credit_until = partial_credit_until
        self.unmarked_credit = unmarked_credit
        self.parser = NumberParser(parentheses_negative)
        self.unsigned_percent = unsigned_percent
        self.correct = correct
        self.incorrect = incorrect
        self.invalid = incorrect if invalid is None else invalid
        scores = (correct, incorrect, self.invalid)
        self.score_range = (min(scores), max(scores))

    def reference_number(self, reference: object) -> Number:
        if type(reference) is dict:
            reference = first_present(reference, _REFERENCE_KEYS)
        return self._reference_value(reference)

    def _reference_value(self, reference: object) -> Number:
        """The number a reference value (read out of its dict, if it had one) gives."""
        if isinstance(reference, (int, float)) and not isinstance(reference, bool):
            if math.isfinite(reference):
                return Number(float(reference), False)
        elif isinstance(reference, str):
            plain = plain_number(reference)
            if plain is not None:
                return plain
            number, _, hedged = self.parser.final_answer(reference)
            if number is not None and not hedged:
                return number
        raise MalformedItem(BAD_REFERENCE)

    def credit(self, answer: Number, expected: Number) -> tuple[float, float]:
        """``(credit, error)``: the best credit over the readings :func:`comparisons` allows."""
        until = self.partial_credit_until
        # The common case (two bare numbers), without the loop below: one tolerance for both readings.
        if not answer.percent and not expected.percent:
            want = expected.value
            tolerance = max(self.rel_tol * abs(want), self.abs_tol)
            error = abs(answer.value - want)
            if error <= tolerance:
                return 1.0, error
            if self.unsigned_percent:  # the bare answer read as a percentage without its sign
                error = min(error, abs(answer.value / 100.0 - want))
                if error <= tolerance:
                    return 1.0, error
            if until > 1.0 and error < until * tolerance:
                return (until * tolerance - error) / ((until - 1.0) * tolerance), error
            return 0.0, error
        best_credit, best_error = 0.0, math.inf
        for got, want in comparisons(answer, expected, self.unsigned_percent):
            tolerance = max(self.rel_tol * abs(want), self.abs_tol)
            error = abs(got - want)
            if error <= tolerance:
                return 1.0, error
            if error < best_error:
                best_error = error
            if until > 1.0:
                credit = (until * tolerance - error) / ((until - 1.0) * tolerance)
                if credit > best_credit:
                    best_credit = credit
        return best_credit, best_error

    def grade_yes_no(self, expected: bool, response: str) -> Graded:
        """A yes/no reference (FinQA has some) graded as a label: the final answer's yes/no must match."""
        readings, marked = yes_no_answer(response)
        reading = metric("reading:yes_no", 1.0)
        if len(readings) != 1:
            reason = "hedged" if readings else "no_yes_no"
            return self.invalid, [reward("numeric_match", 0.0), metric(reason, 1.0), reading]
        credit = 1.0 if expected in readings else 0.0
        if not marked:
            credit *= self.unmarked_credit
        score = self.incorrect + (self.correct - self.incorrect) * credit
        return score, [
            reward("numeric_match", credit),
            metric("answer_marked", 1.0 if marked else 0.0),
            reading,
        ]

    def grade(self, sample: Sample) -> Graded:
        reference = sample.reference
        if type(reference) is dict:  # first_present(reference, _REFERENCE_KEYS), inlined: once per rollout
            get = reference.get
            reference = get("answer")
            if reference is None:
                reference = get("final_answer")
                if reference is None:
                    reference = get("value")
        if isinstance(reference, str):
            plain = plain_number(reference)  # the usual reference: no yes/no to look for
            if plain is not None:
                expected = plain
            else:
                yes_no = yes_no_reference(reference)
                if yes_no is not None:
                    return self.grade_yes_no(yes_no, sample.response)
                expected = self._reference_value(reference)
        else:
            expected = self._reference_value(reference)
        answer, marked, hedged = self.parser.final_answer(sample.response)
        if answer is None or hedged:
            reason = "hedged" if hedged else "no_number"
            return self.invalid, [reward("numeric_match", 0.0), metric(reason, 1.0)]
        credit, error = self.credit(answer, expected)
        if not marked:
            credit *= self.unmarked_credit
        score = self.incorrect + (self.correct - self.incorrect) * credit
        # Dict literals, not helpers: this runs once per rollout.
        return score, [
            {"name": "numeric_match", "value": credit, "type": "Reward"},
            {"name": "abs_error", "value": error if error < _MAX_ERROR_METRIC else _MAX_ERROR_METRIC, "type": "Metric"},
            {"name": "answer_marked", "value": 1.0 if marked else 0.0, "type": "Metric"},
        ]


def build(fields: Fields, context: object) -> NumericGrader:
    grader = NumericGrader(
        rel_tol=fields.number("rel_tol", 0.01, minimum=0),
        abs_tol=fields.number("abs_tol", 1e-6, minimum=0),
        partial_credit_until=fields.number("partial_credit_until", 1.0, minimum=1),
        unmarked_credit=fields.number("unmarked_credit", 1.0, minimum=0, maximum=1),
        parentheses_negative=fields.boolean("parentheses_negative", False),
        unsigned_percent=fields.boolean("unsigned_percent", False),
        correct=fields.number("correct", 1.0),
        incorrect=fields.number("incorrect", 0.0),
        invalid=fields.number("invalid", None),
    )
    fields.done()
    if grader.rel_tol == 0 and grader.abs_tol == 0:
        raise SpecError(fields.at("abs_tol"), "rel_tol and abs_tol cannot both be 0 (floats never compare exactly)")
    if grader.correct <= grader.incorrect:
        raise SpecError(fields.at("correct"), "must be greater than the incorrect score")
    return grader
