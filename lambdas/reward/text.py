"""Text helpers shared by graders: pulling JSON out of model output, normalising tokens.

Model output wraps JSON in prose or Markdown fences; graders must find it without
rewarding junk around it, so extraction reports how cleanly the JSON was found.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from typing import Any

STRICT = 1.0  # the whole response (or one fenced block in it) is the JSON
EMBEDDED = 0.5  # JSON had to be dug out of surrounding prose
NONE = 0.0

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
_MAX_EMBEDDED_ATTEMPTS = 16


def extract_json(text: str) -> tuple[Any, float]:
    """``(value, quality)``: the JSON value in ``text`` and how cleanly it was found (STRICT/EMBEDDED/NONE)."""
    stripped = text.strip()
    if not stripped:
        return None, NONE
    if stripped[0] in "{[":
        try:
            return json.loads(stripped), STRICT
        except ValueError:
            pass
    if "```" in stripped:
        for match in _FENCE.finditer(stripped):
            try:
                return json.loads(match.group(1)), STRICT
            except ValueError:
                continue
    value = _top_level_values(stripped, last=False)
    return (None, NONE) if value is None else (value, EMBEDDED)


JSON_MODES = ("strict", "lenient", "first", "last")


def between_tags(text: str, begin: str, end: str) -> str:
    """The text after the last ``begin`` tag and before the ``end`` tag that follows it.

    A missing tag leaves that side of the text as it is, so an answer without
    reasoning tags is graded whole.
    """
    start = text.rfind(begin)
    if start >= 0:
        text = text[start + len(begin) :]
    stop = text.find(end)
    return text[:stop] if stop >= 0 else text


def _unfenced(text: str) -> str:
    """The body of ``text`` when all of it is one Markdown fence, else ``text``."""
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        body = text[3:-3]
        newline = body.find("\n")
        first_line = body[:newline] if newline >= 0 else ""
        if newline >= 0 and first_line.strip().lower() in ("", "json", "javascript", "js"):
            return body[newline + 1 :]
        if body.lstrip()[:1] in ("{", "["):
            return body
    return text


def _top_level_values(text: str, last: bool) -> Any:
    """The first (or last) JSON object or array found in ``text``.

    The scan is bounded: a response full of braces must not cost quadratic time.
    """
    found: Any = None
    position = 0
    attempts = 0
    while attempts < _MAX_EMBEDDED_ATTEMPTS:
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        attempts += 1
        try:
            value, stop = _DECODER.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        found = value
        if not last:
            break
        position = stop
    return found


def parse_json(text: str, mode: str) -> Any:
    """The JSON value of a response under ``mode`` (one of :data:`JSON_MODES`), or None.

    ``strict``: the whole text, or one Markdown fence that is the whole text, is one
    JSON value: prose around it, a second value or a truncated value give None.
    ``lenient``: as :func:`extract_json` (a fence anywhere, or JSON dug out of prose).
    ``first`` / ``last``: the first or last JSON object or array in the text.
    """
    stripped = text.strip()
    if mode == "strict":
        try:
            return json.loads(_unfenced(stripped))
        except ValueError:
            return None
    if mode == "lenient":
        return extract_json(stripped)[0]
    return _top_level_values(stripped, last=mode == "last")


_PUNCT_TABLE = str.maketrans({ch: " " for ch in string.punctuation})
_ARTICLES = frozenset({"a", "an", "the"})


def normalized_tokens(text: str) -> list[str]:
    """SQuAD-style tokens: lower case, punctuation and English articles removed."""
    return [tok for tok in text.lower().translate(_PUNCT_TABLE).split() if tok not in _ARTICLES]


def common_count(first: Sequence[str], second: Sequence[str]) -> int:
    """How many items two sequences have in common, counted with repeats (their multiset intersection)."""
    counts: dict[str, int] = {}
    for item in first:
        counts[item] = counts.get(item, 0) + 1
    common = 0
    for item in second:
        left = counts.get(item)
        if left:
            counts[item] = left - 1
            common += 1
    return common


_SQUASHED: dict[str, str] = {}  # short strings squashed so far (tool names, argument names): bounded
_MAX_SQUASHED = 4096
_MAX_SQUASHED_CHARS = 64


def squash(text: str) -> str:
    """Case- and whitespace-insensitive form of a string."""
    squashed = _SQUASHED.get(text)
    if squashed is None:
        squashed = " ".join(text.split()).casefold()
        if len(text) <= _MAX_SQUASHED_CHARS and len(_SQUASHED) < _MAX_SQUASHED:
            _SQUASHED[text] = squashed
    return squashed
