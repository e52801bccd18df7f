"""The harness around reward code the user writes: ``{"type": "python", "module": "<module>"}``.

The module lives in ``lambdas/reward/custom/`` (see :mod:`lambdas.reward.custom`) and exposes
``lambda_grader(samples)`` (the published batch shape) or ``grade(sample)`` (one item). The
harness gives it the same guarantees as the built-in graders:

- ``lambda_grader`` is called once per batch with the request items as they arrived (only the
  ones the engine could read: an item with no assistant turn is malformed before user code sees
  it). When that call raises, returns something that is not one result per item, or returns
  results whose ids do not match the items, every item is graded on its own
  (``lambda_grader([item])``), so a bad item gets the minimum score and a
  ``grader_error:<ExceptionType>`` metric while the others keep theirs. ``grade`` is always
  called item by item.
- Every result is checked and repaired: the score must be a finite number (a missing, NaN or
  non-numeric score gives the minimum and ``grader_error:BadScore``); the result's ``id`` is
  ignored in favour of the item's own; a metric entry must be ``{"name": str, "value": number,
  "type": "Reward" | "Metric"}`` (another ``type`` becomes ``Metric``; an entry without a name or
  a numeric value is dropped and counted in ``custom:dropped_metrics``).
- What the code prints (stdout and stderr) is kept out of the function's logs: the first
  :data:`PRINT_EXCERPT_CHARS` characters of each call's output are logged at DEBUG level.
- With a deadline (the Lambda's remaining time), the code runs on a worker thread and the
  harness stops waiting when the deadline comes: items not graded by then get the minimum and a
  ``grader_error:DeadlineExceeded`` metric, and the batch still returns in time. (Python cannot
  stop the thread; it finishes in the background.)
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import io
import logging
import math
import numbers
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from lambdas.reward.custom import PACKAGE, custom_modules, module_source, requirements_file
from lambdas.reward.graders.base import Graded, Grader, GraderError, Metric, Outcome, metric
from lambdas.reward.items import Sample
from lambdas.reward.spec import Fields, SpecError

PRINT_EXCERPT_CHARS = 2000
DROPPED_METRICS = "custom:dropped_metrics"
_METRIC_TYPES = frozenset({"Reward", "Metric"})

logger = logging.getLogger(__name__)


class BadScore(ValueError):
    """The user code returned no finite numeric score for an item."""


class BadResults(ValueError):
    """A batch call returned something other than one result per item, in order."""


class DeadlineExceeded(TimeoutError):
    """The item was not graded before the function's deadline."""


class _Excerpt(io.TextIOBase):
    """A write-only text stream keeping the first ``limit`` characters and counting the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        size = len(text)
        self.total += size
        if self.kept < self.limit:
            piece = text[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return size


def _location(exc: BaseException) -> str:
    """``file:line`` where ``exc`` was raised, for errors at import."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def _import_failed(name: str, path: str, exc: BaseException) -> SpecError:
    return SpecError(path, f"importing {name!r} failed at {_location(exc)}: {type(exc).__name__}: {exc}")


def load_module(name: str, path: str = "module") -> ModuleType | None:
    """Import custom module ``name``; a :class:`SpecError` at ``path`` says what is wrong and where.

    ``None`` when the module needs a package that is not installed here although the module
    declares requirements: they are installed only into its own function's layer, so the
    preflight function (and a machine without them) checks it through the deployed function.
    """
    if name not in custom_modules():
        available = ", ".join(custom_modules()) or "none"
        raise SpecError(
            path, f"no custom grader module {name!r} in lambdas/reward/custom/ (lowercase names; found: {available})"
        )
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as exc:
        if requirements_file(name) is not None and (exc.name or "lambdas").split(".")[0] != "lambdas":
            return None
        raise _import_failed(name, path, exc) from None
    except Exception as exc:  # noqa: BLE001 - user code may raise anything at import; report it with its place
        raise _import_failed(name, path, exc) from None


@dataclass(frozen=True)
class ModuleInfo:
    """What a custom module declares, read from its source without importing it."""

    description: str
    version: str
    score_range: tuple[float, float]
    entry_points: frozenset[str]


def module_info(name: str, path: str = "module") -> ModuleInfo:
    """The module's docstring, ``__version__`` (else a digest of its source), ``SCORE_RANGE`` and entry points."""
    sources = module_source(name)
    if not sources or name not in custom_modules():
        load_module(name, path)  # raises the "no such module" error
    main = next((source for source in sources if source.name in (f"{name}.py", "__init__.py")), sources[0])
    try:
        tree = ast.parse(main.read_text(encoding="utf-8"), filename=str(main))
    except SyntaxError as exc:
        raise SpecError(path, f"{name!r} does not parse at {_location(exc)}: {exc.msg}") from None
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    declared = constants.get("SCORE_RANGE", (0.0, 1.0))
    if not (
        isinstance(declared, (tuple, list))
        and len(declared) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in declared)
    ):
        raise SpecError(path, f"{name}.SCORE_RANGE must be a literal (low, high) pair of finite numbers")
    version = constants.get("__version__")
    if not (isinstance(version, str) and version.strip()):
        digest = hashlib.sha256()
        for source in sources:
            digest.update(source.read_bytes())
        version = f"sha256:{digest.hexdigest()[:12]}"
    functions = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    doc = (ast.get_docstring(tree) or "").strip()
    return ModuleInfo(
        description=doc.splitlines()[0] if doc else f"custom Python grader {name}",
        version=version,
        score_range=(float(declared[0]), float(declared[1])),
        entry_points=frozenset(functions & {"lambda_grader", "grade"}),
    )


def _score(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        score = float(value)
        if math.isfinite(score):
            return score
        raise BadScore(f"score {score!r} is not finite")
    raise BadScore(f"score must be a number, got {type(value).__name__}")


def _entry(name: Any, value: Any, kind: Any) -> Metric | None:
    if not isinstance(name, str) or not name or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return {"name": name, "value": float(value), "type": kind if kind in _METRIC_TYPES else "Metric"}


def _metrics(raw: Any) -> list[Metric]:
    """Typed metric entries from a ``metrics_list`` (list of entries) or a ``metrics`` mapping."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        entries = [_entry(name, value, "Metric") for name, value in raw.items()]
    elif isinstance(raw, list):
        entries = [
            _entry(entry.get("name"), entry.get("value"), entry.get("type")) if isinstance(entry, dict) else None
            for entry in raw
        ]
    else:
        entries = [None]
    kept = [entry for entry in entries if entry is not None]
    if len(kept) < len(entries):
        kept.append(metric(DROPPED_METRICS, len(entries) - len(kept)))
    return kept


def read_result(value: Any) -> Graded:
    """``(score, metrics)`` from one result of the user code.

    A result is a number, ``{"score", "metrics"}`` or ``{"aggregate_reward_score", "metrics_list"}``.
    """
    if isinstance(value, dict):
        if "aggregate_reward_score" in value:
            return _score(value["aggregate_reward_score"]), _metrics(value.get("metrics_list"))
        if "score" in value:
            return _score(value["score"]), _metrics(value.get("metrics", value.get("metrics_list")))
        raise BadScore("result has no aggregate_reward_score (or score)")
    return _score(value), []


def _matching(results: Any, items: Sequence[Any]) -> list[Any]:
    """``results`` in the items' order, or :class:`BadResults` when they are not one result per item."""
    if not isinstance(results, list) or len(results) != len(items):
        raise BadResults(f"expected a list of {len(items)} results, got {type(results).__name__}")
    if len(items) == 1:
        return results  # one result for one item: its id is the item's, whatever the code wrote
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    returned = [
        result.get("id", ids[index]) if isinstance(result, dict) else ids[index] for index, result in enumerate(results)
    ]
    if returned == ids:
        return results
    # Out of order: reorder by id when the ids identify the items unambiguously.
    try:
        by_id = dict(zip(returned, results, strict=True))
        if len(by_id) == len(ids) == len(set(ids)):
            return [by_id[identifier] for identifier in ids]
    except (KeyError, TypeError):
        pass
    raise BadResults("result ids do not match the items' ids")


class PythonGrader(Grader):
    """Runs a custom module's ``lambda_grader`` or ``grade`` under the harness (module docstring)."""

    kind = "python"
    # The user code decides what a missing reference means (the published samples score it 0).
    needs_reference = False

    def __init__(self, module_name: str, module: ModuleType | None, score_range: tuple[float, float]) -> None:
        self.module_name = module_name
        self.score_range = score_range
        self._module = module

    def _entry_points(self) -> tuple[Callable[[list[Any]], Any] | None, Callable[[Any], Any]]:
        """``(lambda_grader or None, a one-item grader)``; a deferred module is imported on first use."""
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(f"{PACKAGE}.{self.module_name}")
        batch = getattr(module, "lambda_grader", None)
        if callable(batch):
            return batch, lambda item: _matching(batch([item]), [item])[0]
        single: Callable[[Any], Any] = module.grade
        return None, single

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        items = [sample.item for sample in samples]
        outcomes: list[Outcome | None] = [None] * len(items)

        def run() -> None:
            try:
                batch, single = self._entry_points()
            except Exception as exc:  # noqa: BLE001 - a module that cannot be imported here grades nothing
                outcomes[:] = [GraderError(exc)] * len(items)
                return
            if batch is not None and len(items) > 1:
                try:
                    for index, result in enumerate(_matching(batch(items), items)):
                        outcomes[index] = self._outcome(_same, result)
                    return
                except Exception:  # noqa: BLE001 - grade the items one by one to isolate the culprit
                    pass
            for index, item in enumerate(items):
                outcomes[index] = self._outcome(single, item)

        self._call(run, deadline)
        late = DeadlineExceeded(f"{self.module_name} did not finish before the function's deadline")
        return [outcome if outcome is not None else GraderError(late) for outcome in list(outcomes)]

    @staticmethod
    def _outcome(produce: Callable[[Any], Any], value: Any) -> Outcome:
        try:
            return read_result(produce(value))
        except Exception as exc:  # noqa: BLE001 - one bad item must not fail the batch
            return GraderError(exc)

    def _call(self, run: Callable[[], None], deadline: float | None) -> None:
        """Run ``run`` with its prints captured; on a worker thread, waited for until ``deadline``."""
        captured = _Excerpt(PRINT_EXCERPT_CHARS)
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            if deadline is None:
                run()
            else:
                worker = threading.Thread(target=run, name=f"grader-{self.module_name}", daemon=True)
                worker.start()
                worker.join(max(0.0, deadline - time.monotonic()))
        if captured.total:
            logger.debug(
                "custom grader output (excerpt)",
                extra={"grader_module": self.module_name, "chars": captured.total, "excerpt": "".join(captured.parts)},
            )


def _same(value: Any) -> Any:
    return value


def build(fields: Fields, context: Any) -> PythonGrader:
    name = fields.string("module")
    at = fields.at("module")
    info = module_info(name, at)
    module = load_module(name, at)
    if module is None:
        entry_points = set(info.entry_points)
    else:
        entry_points = {entry for entry in ("lambda_grader", "grade") if callable(getattr(module, entry, None))}
    if not entry_points:
        raise SpecError(at, f"{name!r} defines neither lambda_grader(samples) nor grade(sample)")
    low = fields.number("min_score", info.score_range[0])
    high = fields.number("max_score", info.score_range[1])
    fields.done()
    if not low < high:
        raise SpecError(fields.at("max_score"), f"must be greater than min_score ({low:g})")
    return PythonGrader(name, module, (low, high))
