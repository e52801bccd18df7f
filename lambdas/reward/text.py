"""Text helpers shared by graders: pulling JSON out of model output, normalising tokens.

Model output wraps JSON in prose or Markdown fences; graders must find it without
rewarding junk around it, so extraction reports how cleanly the JSON was found.
"""

from __future__ import annotations

import json
import re
import string
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
    # Bounded scan: a response full of braces must not cost quadratic time.
    attempts = 0
    position = 0
    while attempts < _MAX_EMBEDDED_ATTEMPTS:
        brace = stripped.find("{", position)
        bracket = stripped.find("[", position)
        starts = [i for i in (brace, bracket) if i >= 0]
        if not starts:
            break
        start = min(starts)
        attempts += 1
        try:
            value, _ = _DECODER.raw_decode(stripped, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(value, (dict, list)):
            return value, EMBEDDED
        position = start + 1
    return None, NONE


_PUNCT_TABLE = str.maketrans({ch: " " for ch in string.punctuation})
_ARTICLES = frozenset({"a", "an", "the"})


def normalized_tokens(text: str) -> list[str]:
    """SQuAD-style tokens: lower case, punctuation and English articles removed."""
    return [tok for tok in text.lower().translate(_PUNCT_TABLE).split() if tok not in _ARTICLES]


def squash(text: str) -> str:
    """Case- and whitespace-insensitive form of a string."""
    return " ".join(text.split()).casefold()
