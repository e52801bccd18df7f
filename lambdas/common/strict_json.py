"""Strict JSON: what standard JSON allows and nothing more.

Python's ``json.loads`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, and reads a number too large for a
float (``1e309``) as infinity. A request, a policy or a decision carrying one of them would pass checks such
as ``value <= limit`` that infinity or NaN make meaningless, so every reader of untrusted JSON uses
:func:`loads`, which refuses them with :class:`NotStrictJson` naming the value.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NotStrictJson(ValueError):
    """A number standard JSON does not have (``NaN``, ``Infinity``) or one that overflows to infinity."""


def _refuse_constant(name: str) -> float:
    raise NotStrictJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotStrictJson(f"{text} is too large for a finite number")
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and numbers too large to be finite."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
