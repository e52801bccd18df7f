"""Reading grader specs: typed, path-aware access to plain JSON objects.

Specs come from JSON (an environment variable or a preset file) and are checked
once, when the grader is built. Every error names the offending field with a
dotted path from the spec root (``graders.tool.grader.weights.order: must be a
number >= 0``) so a bad deployment fails at cold start with a fixable message
instead of mis-scoring rollouts later.
"""

from __future__ import annotations

import math
import re
from typing import Any, overload

MISSING: Any = object()


class SpecError(ValueError):
    """A grader spec is invalid; ``path`` names the field (empty for the spec itself)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path or 'spec'}: {message}")


def child(path: str, key: object) -> str:
    """The path of ``key`` inside the object at ``path``."""
    return f"{path}.{key}" if path else str(key)


def item_path(path: str, index: int) -> str:
    return f"{path or 'spec'}[{index}]"


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: object) -> bool:
    """A JSON number (bool is not one), finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Fields:
    """Typed reads from one spec object; :meth:`done` rejects fields nobody read (typos)."""

    def __init__(self, obj: object, path: str) -> None:
        if not isinstance(obj, dict):
            raise SpecError(path, f"must be an object, got {_describe(obj)}")
        self.obj: dict[str, Any] = obj
        self.path = path
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return child(self.path, key)

    def raw(self, key: str, default: Any = MISSING) -> Any:
        self._read.add(key)
        if key in self.obj:
            return self.obj[key]
        if default is MISSING:
            raise SpecError(self.at(key), "required field missing")
        return default

    @overload
    def number(
        self,
        key: str,
        default: float = ...,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
    ) -> float: ...

    @overload
    def number(
        self,
        key: str,
        default: None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
    ) -> float | None: ...

    def number(
        self,
        key: str,
        default: float | None = MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
    ) -> float | None:
        """The number at ``key`` as a float; an absent field gives ``default`` unchanged."""
        value = self.raw(key, default)
        unset = value is default and default is not MISSING
        if unset:
            return default
        bounds = []
        if minimum is not None:
            bounds.append(f">= {minimum:g}")
        if above is not None:
            bounds.append(f"> {above:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        expectation = "must be a number" + (" " + " and ".join(bounds) if bounds else "")
        if (
            not is_number(value)
            or (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (maximum is not None and value > maximum)
        ):
            raise SpecError(self.at(key), f"{expectation}, got {_describe(value)}")
        return float(value)

    def integer(self, key: str, default: int = MISSING, *, minimum: int | None = None) -> int:
        value = self.raw(key, default)
        unset = value is default and default is not MISSING
        if unset:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            bound = f" >= {minimum}" if minimum is not None else ""
            raise SpecError(self.at(key), f"must be an integer{bound}, got {_describe(value)}")
        return value

    def boolean(self, key: str, default: bool = MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise SpecError(self.at(key), f"must be true or false, got {_describe(value)}")
        return value

    @overload
    def string(self, key: str, default: str = ..., *, choices: list[str] | None = None) -> str: ...

    @overload
    def string(self, key: str, default: None, *, choices: list[str] | None = None) -> str | None: ...

    def string(self, key: str, default: str | None = MISSING, *, choices: list[str] | None = None) -> str | None:
        """The non-empty string at ``key``; an absent field gives ``default`` unchanged."""
        value = self.raw(key, default)
        unset = value is default and default is not MISSING
        if unset:
            return default
        if not isinstance(value, str) or not value.strip():
            raise SpecError(self.at(key), f"must be a non-empty string, got {_describe(value)}")
        if choices is not None and value not in choices:
            raise SpecError(self.at(key), f"must be one of {', '.join(choices)}; got {_describe(value)}")
        return value

    def regex(self, key: str, *, ignore_case: bool = False) -> re.Pattern[str] | None:
        value = self.raw(key, None)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise SpecError(self.at(key), f"must be a non-empty regular expression string, got {_describe(value)}")
        try:
            return re.compile(value, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise SpecError(self.at(key), f"invalid regular expression: {exc}") from None

    def done(self) -> None:
        unknown = sorted(set(self.obj) - self._read)
        if unknown:
            allowed = ", ".join(sorted(self._read))
            raise SpecError(self.at(unknown[0]), f"unknown field (allowed here: {allowed})")
