"""Classification grader: the label the response commits to must be the reference's.

Extraction is tolerant of how models write a label (``HQ.``, ``The answer is
**hq**``, ``"LQ_EDIT"``, ``LQ-EDIT``) but never rewards hedging. Labels match
on token boundaries, so ``LQ`` is not found inside ``LQ_EDIT`` and longer labels
win over their prefixes. The final label is found in this order:

1. a negated mention (``not HQ``, ``isn't LQ_CLOSE``, ``rather than HQ``, and
   each label of ``not LQ_EDIT or LQ_CLOSE``) never counts as answering it;
2. a response naming every label (of two or more) is a hedge;
3. the label after the last ``Answer:``/``Label:`` marker on its line, else the
   label opening the response, else the only label on the first line;
4. otherwise the only label named anywhere.

Labels listed together at the committed position (``HQ or LQ_EDIT``,
``HQ, LQ_EDIT``) are a hedge; a label followed by an explanation naming another
(``LQ_EDIT (it would need edits to be HQ)``) answers the first. A hedge, or no
label at all (empty, junk), gets the ``invalid`` score.
"""

from __future__ import annotations

import re
from typing import cast

from lambdas.reward.graders.base import Graded, Grader, MalformedItem, first_present, metric, reward
from lambdas.reward.items import BAD_REFERENCE, Sample
from lambdas.reward.spec import Fields, SpecError, item_path

_SEPARATORS = re.compile(r"[\s_\-]+")
# A negation just before a mention: "not HQ", "isn't an LQ_EDIT", "rather than HQ", "neither ... nor".
_NEGATORS = (
    "not",
    "never",
    "nor",
    "neither",
    "without",
    "except",
    "no longer",
    "rather than",
    "instead of",
    "other than",
)
_FILLERS = (
    *("a", "an", "the", "really", "quite", "exactly", "just", "simply", "as", "be", "being"),
    *("labeled", "labelled", "classified", "considered", "marked", "called"),
)


def _reversed_words(phrase: str) -> str:
    return r"\s+".join(re.escape(word[::-1]) for word in reversed(phrase.split()))


# Matched against the reversed text just before a mention, anchored at the mention: one
# anchored match instead of a search through the window (this runs for every mention).
_NEGATED_REVERSED = re.compile(
    rf"(?:\W+(?:{'|'.join(map(_reversed_words, _FILLERS))})(?!\w)){{0,3}}\W*"
    rf"(?:(?:{'|'.join(map(_reversed_words, _NEGATORS))})(?!\w)|t['\u2019]n)",
    re.IGNORECASE,
)
_NEGATION_WINDOW = 48
_FEW_MENTIONS = 4
_MAX_SCANNED = 2000
_MANY_MENTIONS = 64
# Where a negation may end: each negator's last word, or "n't" (a superset of what _NEGATED_REVERSED
# accepts, found once per text; the exact check runs only near one of these).
_NEGATION_HINT = re.compile(
    rf"(?:{'|'.join(sorted({re.escape(n.split()[-1]) for n in _NEGATORS}, key=len, reverse=True))}|n['\u2019]t)",
    re.IGNORECASE,
)
_NEGATION_HINT_LOWER = re.compile(_NEGATION_HINT.pattern)
_MAX_SPELLING = 64
_MAX_SPELLINGS = 1024
# An explicit answer position: "Answer: HQ", "Final label = HQ", "**Classification:** HQ".
_MARKER = re.compile(r"\b(?:answer|label|classification|category|verdict)\W{0,3}(?:is\W{0,3})?[:=]", re.IGNORECASE)
_MARKER_HINTS = ("nswer", "NSWER", "abel", "ABEL", "lassif", "LASSIF", "ategor", "ATEGOR", "erdict", "ERDICT")
# What may stand between two labels listed as alternatives: "HQ, LQ_EDIT", "HQ or LQ_EDIT", "HQ/LQ_EDIT".
_LIST_GAP = re.compile(r"[\W_]*(?:(?:or|and|vs|versus|maybe|perhaps|possibly|even)\b[\W_]*){0,3}", re.IGNORECASE)
# What carries a negation on to the next label: "not LQ_EDIT or LQ_CLOSE", "not HQ, nor LQ_EDIT".
_NEGATION_CHAIN = re.compile(r"[\s*_`'\"]*,?\s*(?:or|nor)\s+[*_`'\"]*", re.IGNORECASE)
_OPENING_NOISE = " \t\r\n*_\"'`>#:-([{"


def _label_key(text: str, case_sensitive: bool) -> str:
    key = _SEPARATORS.sub("_", text.strip())
    return key if case_sensitive else key.casefold()


def _label_pattern(label: str) -> str:
    # "LQ_EDIT" also matches "LQ EDIT" / "lq-edit": models rarely keep the underscore.
    return r"[\s_\-]+".join(re.escape(part) for part in _SEPARATORS.split(label.strip()))


def _is_word(char: str) -> bool:
    """``char`` is what the regex ``\\w`` matches (a Unicode letter, digit or number, or ``_``)."""
    return char.isalnum() or char == "_"


def _first_characters(labels: list[str]) -> str:
    """A lookahead for the characters the labels start with (empty when one starts with a separator).

    Checked before the lookbehind and the alternatives, it lets the regex engine reject every other
    position at once, which was most of the cost of finding labels in a long response. Compiled with
    the same flags, the class matches exactly the characters the alternatives' first letters match.
    """
    firsts = set()
    for label in labels:
        first_part = _SEPARATORS.split(label.strip())[0]
        if not first_part:
            return ""
        firsts.add(first_part[0])
    return "(?=[" + "".join(re.escape(char) for char in sorted(firsts)) + "])"


def _negated_windows(text: str, matches: list[re.Match[str]]) -> list[bool]:
    """Whether a negation ends each mention: read once per distinct window of text before a mention.

    Whether a mention is negated depends only on the :data:`_NEGATION_WINDOW` characters before it,
    so a text naming labels many times (a label repeated thousands of times) costs a slice and a
    lookup per mention, and the check itself once per distinct window. A mention opening the text
    has nothing before it: its window is empty, which no negation matches.
    """
    windows = [
        text[start - _NEGATION_WINDOW if start > _NEGATION_WINDOW else 0 : start]
        for start in map(re.Match.start, matches)
    ]
    negated = dict.fromkeys(windows, False)
    for window in negated:
        negated[window] = _NEGATED_REVERSED.match(window[::-1]) is not None
    return [negated[window] for window in windows]


class LabelGrader(Grader):
    kind = "label"

    def __init__(
        self,
        labels: list[str],
        *,
        correct: float = 1.0,
        incorrect: float = 0.0,
        invalid: float | None = None,
        case_sensitive: bool = False,
    ) -> None:
        self.labels = list(labels)
        self.correct = correct
        self.incorrect = incorrect
        self.invalid = incorrect if invalid is None else invalid
        self.case_sensitive = case_sensitive
        self._canonical = {_label_key(label, case_sensitive): label for label in labels}
        # Spellings seen so far -> the spec's label (None: not a label); bounded, see canonical().
        self._spellings: dict[str, str | None] = {}
        # Short responses read so far -> their final label; bounded, see final_label().
        self._finals: dict[str, tuple[str | None, str]] = {}
        alternatives = "|".join(_label_pattern(label) for label in sorted(labels, key=len, reverse=True))
        flags = 0 if case_sensitive else re.IGNORECASE
        self._finder = re.compile(rf"{_first_characters(labels)}(?<!\w)(?:{alternatives})(?!\w)", flags)
        # The same search without the lookbehind and case-sensitive (case-insensitive labels search the
        # lowered text, when both are ASCII): a pattern opening with the labels' letters lets the regex
        # engine jump from candidate to candidate. See _label_matches.
        self._scanner: re.Pattern[str] | None = None
        if case_sensitive or all(label.isascii() for label in labels):
            scanned = sorted(labels, key=len, reverse=True)
            if not case_sensitive:
                scanned = [label.lower() for label in scanned]
            self._scanner = re.compile(rf"(?:{'|'.join(map(_label_pattern, scanned))})(?!\w)")
        scores = (self.correct, self.incorrect, self.invalid)
        self.score_range = (min(scores), max(scores))

    def canonical(self, text: str) -> str | None:
        """The spec's spelling of a label, or None when ``text`` is not one."""
        try:
            return self._spellings[text]
        except KeyError:
            pass
        label = self._canonical.get(_label_key(text, self.case_sensitive))
        # Models write a label a handful of ways: remembering them saves normalising every mention.
        if len(text) <= _MAX_SPELLING and len(self._spellings) < _MAX_SPELLINGS:
            self._spellings[text] = label
        return label

    def reference_label(self, reference: object) -> str:
        if isinstance(reference, dict):
            reference = first_present(reference, ("label", "answer", "final_answer"))
        if isinstance(reference, str):
            label = self.canonical(reference)
            if label is not None:
                return label
        raise MalformedItem(BAD_REFERENCE)

    def labels_in(self, text: str) -> set[str]:
        canonical = self.canonical
        return {cast(str, canonical(found)) for found in self._finder.findall(text)}

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, label)`` of every label the text names and does not negate, in text order.

        The negation check reads the reversed text in place (no slice per mention). With more than
        :data:`_FEW_MENTIONS` mentions it runs only for a mention with a negating word (or ``n't``)
        ending within :data:`_NEGATION_WINDOW` characters before it, found in one pass over the text.
        With more than :data:`_MANY_MENTIONS` it runs once per distinct window (see :func:`_negated_windows`).
        """
        canonical = self.canonical
        found = []
        matches = self._label_matches(text)
        if not matches:
            return []
        # Ends of the negating words, in order (None: check every mention); a mention far from all
        # of them cannot be negated.
        hints: list[int] | None = None
        negations: list[bool] | None = None  # whether each mention is negated, when read in bulk
        if not matches[-1].start():  # one mention, opening the text: nothing before it to negate it
            hints = []
        elif len(matches) > _FEW_MENTIONS:  # else checking each mention costs less than finding the hints
            if text.isascii():  # lowered ASCII keeps its positions, and a case-sensitive search is much faster
                hints = [match.end() for match in _NEGATION_HINT_LOWER.finditer(text.lower())]
            else:
                hints = [match.end() for match in _NEGATION_HINT.finditer(text)]
            if hints and len(matches) > _MANY_MENTIONS:
                negations = _negated_windows(text, matches)
        spellings = self._spellings
        if hints is not None and not hints:  # nothing can be negated: every mention counts
            return [
                (match.start(), match.end(), spellings.get(match.group()) or cast(str, canonical(match.group())))
                for match in matches
            ]
        negated_end = -1  # end of the last negated mention: "not LQ_EDIT or LQ_CLOSE" negates both
        if negations is not None:
            for match, negated in zip(matches, negations, strict=True):
                start = match.start()
                if negated or (negated_end >= 0 and _NEGATION_CHAIN.fullmatch(text, negated_end, start) is not None):
                    negated_end = match.end()
                    continue
                negated_end = -1
                found.append((start, match.end(), cast(str, canonical(match.group()))))
            return found
        hint = 0
        reversed_text = text[::-1]
        length = len(text)
        for match in matches:
            start = match.start()
            if negated_end >= 0 and _NEGATION_CHAIN.fullmatch(text, negated_end, start) is not None:
                negated_end = match.end()
                continue
            if start:
                if hints is not None:
                    while hint < len(hints) and hints[hint] < start - _NEGATION_WINDOW:
                        hint += 1
                if (hints is None or (hint < len(hints) and hints[hint] <= start)) and _NEGATED_REVERSED.match(
                    reversed_text, length - start, length - max(0, start - _NEGATION_WINDOW)
                ) is not None:
                    negated_end = match.end()
                    continue
            negated_end = -1
            found.append((start, match.end(), cast(str, canonical(match.group()))))
        return found

    def _label_matches(self, text: str) -> list[re.Match[str]]:
        """What ``self._finder.finditer(text)`` finds, through the faster scanner when it gives the same.

        The scanner finds the finder's matches when every candidate it finds passes the finder's
        lookbehind (no word character just before it); otherwise the finder runs.
        """
        scanner = self._scanner
        # The scanner costs more per candidate and less per position than the finder: a long text,
        # where candidates may be dense (a label repeated thousands of times), goes to the finder.
        if scanner is not None and len(text) <= _MAX_SCANNED and (self.case_sensitive or text.isascii()):
            searched = text if self.case_sensitive else text.lower()  # lowered ASCII keeps its positions
            matches = list(scanner.finditer(searched))
            for match in matches:
                start = match.start()
                if start and _is_word(searched[start - 1]):
                    break
            else:
                return matches
        return list(self._finder.finditer(text))

    def final_label(self, text: str) -> tuple[str | None, str]:
        """``(label, "")`` for the label the response commits to, or ``(None, reason)``.

        A classifier answers in a few short ways (``HQ``, ``HQ.``, ``The answer is **HQ**.``), so the
        reading of a short response is remembered (a bounded number of them) instead of redone.
        """
        if len(text) > _MAX_SPELLING:
            return self._final_label(text)
        found = self._finals.get(text)
        if found is None:
            found = self._final_label(text)
            if len(self._finals) < _MAX_SPELLINGS:
                self._finals[text] = found
        return found

    def _final_label(self, text: str) -> tuple[str | None, str]:
        mentions = self.mentions(text)
        named = {label for _, _, label in mentions}
        if len(named) <= 1:
            return (named.pop(), "") if named else (None, "no_label")
        if len(named) == len(self.labels):
            return None, "multiple_labels"
        committed = self._committed(text, mentions)
        if committed is not None:
            return committed
        return None, "multiple_labels"

    def _committed(self, text: str, mentions: list[tuple[int, int, str]]) -> tuple[str | None, str] | None:
        """The answer at an explicit position (marker, opening, first line), or None when there is none."""
        if any(hint in text for hint in _MARKER_HINTS):
            last = None
            for last in _MARKER.finditer(text):  # noqa: B007 - the last marker is the final answer
                pass
            if last is not None:
                newline = text.find("\n", last.end())
                line_end = len(text) if newline < 0 else newline
                index = next((i for i, m in enumerate(mentions) if m[0] >= last.end()), None)
                if index is not None and mentions[index][0] < line_end:
                    return self._first_of(text, mentions, index)
        if not text[: mentions[0][0]].strip(_OPENING_NOISE):
            return self._first_of(text, mentions, 0)
        stripped = text.lstrip()
        first_end = len(text) - len(stripped) + len(stripped.split("\n", 1)[0])
        on_first_line = {label for start, _, label in mentions if start < first_end}
        if len(on_first_line) == 1:
            return self._first_of(text, mentions, 0)
        return None

    @staticmethod
    def _first_of(text: str, mentions: list[tuple[int, int, str]], index: int) -> tuple[str | None, str]:
        """The label at ``mentions[index]``, unless the next other label is listed right beside it (a hedge)."""
        _, end, label = mentions[index]
        for start, _, other in mentions[index + 1 :]:
            if other != label:
                if _LIST_GAP.fullmatch(text, end, start) is not None:
                    return None, "multiple_labels"
                break
        return label, ""

    def grade(self, sample: Sample) -> Graded:
        expected = self.reference_label(sample.reference)
        found, reason = self.final_label(sample.response)
        if found is not None:
            match = found == expected
            score = self.correct if match else self.incorrect
            # A dict literal, not the helper: this runs once per rollout.
            return score, [{"name": "label_match", "value": 1.0 if match else 0.0, "type": "Reward"}]
        return self.invalid, [reward("label_match", 0.0), metric(reason, 1.0)]


def build(fields: Fields, context: object) -> LabelGrader:
    labels = fields.raw("labels")
    path = fields.at("labels")
    if not isinstance(labels, list) or not labels:
        raise SpecError(path, "must be a non-empty list of strings")
    seen: dict[str, str] = {}
    case_sensitive = fields.boolean("case_sensitive", False)
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise SpecError(item_path(path, index), "must be a non-empty string")
        key = _label_key(label, case_sensitive)
        if key in seen:
            raise SpecError(item_path(path, index), f"duplicates label {seen[key]!r}")
        seen[key] = label
    grader = LabelGrader(
        labels,
        correct=fields.number("correct", 1.0),
        incorrect=fields.number("incorrect", 0.0),
        invalid=fields.number("invalid", None),
        case_sensitive=case_sensitive,
    )
    fields.done()
    # An "invalid" score at or above "correct" is legal but rewards hedging: `verify` reports it.
    if grader.correct <= grader.incorrect:
        raise SpecError(fields.at("correct"), "must be greater than the incorrect score")
    return grader
