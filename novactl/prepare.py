"""``novactl prepare``: a CSV or JSONL table of questions and answers -> the pipeline's three datasets.

Each input row becomes one example: the query (one column, or a template such as ``"{Title}\\n{Body}"``
naming several), the response (the answer the model learns, and by default the reference answer the grader
compares with), an optional system prompt (text or a file), an optional id column. Rows are shuffled with a
seed and split by ratios into:

- ``sft.jsonl``: Converse rows with ``schemaVersion`` ``bedrock-conversation-2024`` (system, user, assistant);
- ``rft.jsonl``: ``{"id", "messages": [system, user], "reference_answer"}`` (no assistant turn);
- ``eval.jsonl``: ``gen_qa`` rows ``{"query", "response", "system"}`` (or RFT rows with ``--eval-task rft_eval``).

Every file is then checked with the validators preflight runs (:mod:`lambdas.pipeline.datasets`), and the
evaluation prompts are checked against the training prompts (:func:`leaked_prompts`).
"""

from __future__ import annotations

import csv
import io
import json
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.pipeline import datasets as dataset_checks
from lambdas.pipeline import leakage, preflight
from lambdas.pipeline.schema import RunInput

SFT_SCHEMA_VERSION = "bedrock-conversation-2024"
SPLITS = ("sft", "rft", "eval")
# The Stack Overflow question-quality case study: a CSV with Title, Body and Y (HQ, LQ_EDIT, LQ_CLOSE).
STACKOVERFLOW_QUERY = "Title: {Title}\nBody: {Body}\nLabel:"
# A run input's model when it names none: its rules and base recipes apply unless --model says otherwise.
DEFAULT_MODEL: str = RunInput.model_fields["model"].default


class PrepareError(ValueError):
    """The input or the mapping has problems; each names the file, the line and the field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Mapping:
    """Which columns make an example. ``query`` is a column name or a ``{Column}`` template."""

    query: str
    response: str
    reference: str | None = None
    system: str | None = None
    id: str | None = None

    def columns(self) -> list[str]:
        """Every column the mapping reads."""
        names = _template_fields(self.query) or [self.query]
        names += [c for c in (self.response, self.reference, self.id) if c]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Example:
    line: int
    id: str
    query: str
    response: str
    reference: str


@dataclass
class Prepared:
    """What ``prepare`` wrote and found."""

    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Blank(dict[str, str]):
    """A row's values; a column a later JSON row lacks reads as empty (and is reported so)."""

    def __missing__(self, key: str) -> str:
        return ""


def _template_fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return []


def read_table(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` of a CSV (header row first) or JSON Lines file; the line where each row starts."""
    try:
        yield from _read_table(path)
    except UnicodeDecodeError as error:
        raise PrepareError(
            [f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"]
        ) from None


def _read_table(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except ValueError as error:
                    raise PrepareError([f"{path}, line {number}: not valid JSON ({error})"]) from None
                if not isinstance(row, dict):
                    raise PrepareError([f"{path}, line {number}: a row is a JSON object, got {type(row).__name__}"])
                yield number, row
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            start = reader.line_num + 1
            if not header:
                raise PrepareError([f"{path}, line 1: no header row (the column names)"])
            for row in reader:
                if None in row:
                    raise PrepareError([f"{path}, line {start}: more values than the header has columns"])
                yield start, row
                start = reader.line_num + 1
        except csv.Error as error:
            raise PrepareError([f"{path}, line {reader.line_num}: not valid CSV ({error})"]) from None


def examples(path: Path, mapping: Mapping, system: str | None) -> tuple[list[Example], list[str]]:
    """The examples of ``path`` and the problems of its rows (missing columns, empty fields)."""
    found: list[Example] = []
    problems: list[str] = []
    columns = mapping.columns()
    checked = False
    for number, row in read_table(path):
        if not checked:
            checked = True
            missing = [c for c in columns if c not in row]
            if missing:
                have = ", ".join(repr(k) for k in row) or "none"
                where = "line 1 (the header)" if path.suffix.lower() == ".csv" else f"line {number}"
                raise PrepareError(
                    [f"{path}, {where}: no column {', '.join(repr(m) for m in missing)} (columns: {have})"]
                )
        values = _Blank({k: "" if v is None else str(v) for k, v in row.items()})
        query = values[mapping.query] if mapping.query in values else mapping.query.format_map(values)
        response = values.get(mapping.response, "")
        reference = values.get(mapping.reference or mapping.response, "")
        row_problems = []
        if not query.strip():
            row_problems.append(f"{path}, line {number}, field {mapping.query!r}: the query is empty")
        if not response.strip():
            row_problems.append(f"{path}, line {number}, field {mapping.response!r}: the response is empty")
        if row_problems:
            problems.extend(row_problems)
            continue
        identifier = values.get(mapping.id, "") if mapping.id else ""
        found.append(Example(number, identifier or f"row-{number}", query.strip(), response.strip(), reference.strip()))
    if system is not None and not system.strip():
        problems.append("the system prompt is empty")
    return found, problems


def split(items: Sequence[Example], ratios: Sequence[float], seed: int) -> dict[str, list[Example]]:
    """Shuffle with ``seed`` and cut into ``sft``/``rft``/``eval`` by ``ratios`` (normalized to sum to 1)."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    total = sum(ratios)
    parts: dict[str, list[Example]] = {}
    start = 0
    for index, name in enumerate(SPLITS):
        end = len(shuffled) if index == len(SPLITS) - 1 else start + round(len(shuffled) * ratios[index] / total)
        parts[name] = shuffled[start:end]
        start = end
    return parts


def sft_row(example: Example, system: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"schemaVersion": SFT_SCHEMA_VERSION}
    if system:
        row["system"] = [{"text": system}]
    row["messages"] = [
        {"role": "user", "content": [{"text": example.query}]},
        {"role": "assistant", "content": [{"text": example.response}]},
    ]
    return row


def rft_row(example: Example, system: str | None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": example.query})
    return {"id": example.id, "messages": messages, "reference_answer": example.reference}


def gen_qa_row(example: Example, system: str | None) -> dict[str, Any]:
    row = {"query": example.query, "response": example.reference}
    if system:
        row["system"] = system
    return row


def leaked_prompts(train: Sequence[Example], evaluation: Sequence[Example]) -> list[Example]:
    """Evaluation examples whose prompt also appears in training, by preflight's rule
    (:func:`lambdas.pipeline.leakage.normalise`): a score on them measures memory, not skill."""
    seen = {leakage.normalise(e.query) for e in train}
    return [e for e in evaluation if leakage.normalise(e.query) in seen]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def prepare(
    source: Path,
    mapping: Mapping,
    out_dir: Path,
    *,
    system: str | None = None,
    ratios: Sequence[float] = (0.4, 0.4, 0.2),
    seed: int = 0,
    eval_task: str = "gen_qa",
    model: str = DEFAULT_MODEL,
) -> Prepared:
    """Write ``sft.jsonl``, ``rft.jsonl`` and ``eval.jsonl`` to ``out_dir`` and check them as preflight would.

    A training split with fewer rows than one ``global_batch_size`` of ``model``'s base recipe is warned
    about: preflight refuses it unless the run input overrides ``global_batch_size`` to a smaller value.
    """
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or not sum(ratios):
        raise PrepareError([f"--split: three ratios >= 0 (sft, rft, eval) with a positive sum, got {list(ratios)}"])
    items, problems = examples(source, mapping, system)
    result = Prepared(problems=list(problems))
    parts = split(items, ratios, seed)
    writers = {"sft": sft_row, "rft": rft_row, "eval": gen_qa_row if eval_task == "gen_qa" else rft_row}
    kinds = {"sft": "sft", "rft": "rft", "eval": eval_task}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        body = _jsonl([writers[name](e, system) for e in parts[name]])
        path = out_dir / f"{name}.jsonl"
        path.write_bytes(body)
        result.files[name] = path
        report = dataset_checks.validate_stream(io.BytesIO(body), kinds[name], rules=dataset_checks.Rules(model=model))
        result.rows[name] = report.rows
        result.problems.extend(f"{path} ({kinds[name]}): {p}" for p in report.problems())
        batch = preflight.recipe_batch_size(model, name) if name in ("sft", "rft") else None
        if batch and report.rows < batch:
            result.warnings.append(
                f"{path} ({kinds[name]}): {report.rows} rows, fewer than the global_batch_size {batch} of the "
                f"{model} {name.upper()} recipe; preflight refuses it: give at least {batch} rows (more input rows "
                "or a larger --split share) or override global_batch_size in the run input"
            )
    for example in leaked_prompts(parts["sft"] + parts["rft"], parts["eval"]):
        result.problems.append(
            f"{source}, line {example.line}, field {mapping.query!r}: this evaluation prompt also appears in the "
            "training data (a duplicate row); remove duplicates before splitting"
        )
    return result
