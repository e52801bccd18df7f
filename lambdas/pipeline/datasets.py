"""Streaming validation of JSONL datasets in the formats of docs/contracts/datasets.md.

A dataset is read in fixed-size chunks from any binary stream (an S3 ``StreamingBody``
or a local file) and checked line by line, so memory stays bounded by the chunk size
and the longest line, whatever the file size. Rows are parsed with ``json.loads`` and
checked with plain type tests (no pydantic per row): validating is CPU-bound and the
pre-flight Lambda has a fraction of a core.

Formats (``kind``):

- ``sft``: Converse, ``{"system"?: [{"text"}], "messages": [{"role", "content": [blocks]}]}``,
  roles alternating user/assistant from user, ending with assistant;
- ``rft``: ``{"messages": [system?, user, ...], "reference_answer": any, "id"?, "tools"?, ...}``,
  no final assistant turn; ``reference_answer`` at the top level or under ``metadata``;
- ``gen_qa``: ``{"query": str, "response": str, "system"?: str}``;
- ``rft_eval``: the RFT format.

The report keeps the first errors with their line numbers and counts them all.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 16 << 20
MAX_REPORTED_ERRORS = 10
# Smallest datasets worth a GPU job (Bedrock's own minimum for SFT is 8 records).
MIN_ROWS = {"sft": 8, "rft": 8, "gen_qa": 5, "rft_eval": 5}

_CONTENT_BLOCKS = frozenset({"text", "image", "video", "document", "toolUse", "toolResult", "reasoningContent"})
_RFT_ROLES = frozenset({"system", "user", "assistant", "nova_assistant", "tool"})
_ASSISTANT_ROLES = frozenset({"assistant", "nova_assistant"})


class Readable(Protocol):
    def read(self, amt: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class DatasetReport:
    """What one pass over a dataset found."""

    kind: str
    rows: int = 0
    bytes: int = 0
    blank_lines: int = 0
    error_count: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def min_rows(self) -> int:
        return MIN_ROWS[self.kind]

    def problems(self) -> list[str]:
        """Human-readable problems: the first errors, the total, a too-small dataset."""
        out = [str(e) for e in self.errors]
        if self.error_count > len(self.errors):
            out.append(f"... and {self.error_count - len(self.errors)} more invalid lines")
        if self.error_count:
            out.append(f"{self.error_count} of {self.rows + self.error_count} lines are invalid")
        if self.rows < self.min_rows:
            out.append(f"{self.rows} valid rows; a {self.kind} dataset needs at least {self.min_rows}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "bytes": self.bytes,
            "invalidLines": self.error_count,
            "firstErrors": [str(e) for e in self.errors],
        }


def iter_lines(
    stream: Readable, *, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` for every line of ``stream``; ``None`` for a line longer than the limit.

    Reads ``chunk_bytes`` at a time and never holds more than one chunk plus one line.
    """
    number = 0
    pending = b""
    skipping = False  # inside an over-long line: drop bytes until its end
    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        start = 0
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            skipping = False
            number += 1
            yield number, None
            start = end + 1
        lines = chunk[start:].split(b"\n")
        if pending:
            lines[0] = pending + lines[0]
        pending = lines.pop()
        for line in lines:
            number += 1
            yield number, line
        if len(pending) > max_line_bytes:
            pending = b""
            skipping = True
    if skipping:
        yield number + 1, None
    elif pending:
        yield number + 1, pending


def _sft_error(row: Any) -> str | None:
    if type(row) is not dict:
        return "not a JSON object"
    messages = row.get("messages")
    if type(messages) is not list or not messages:
        return "'messages' must be a non-empty list"
    system = row.get("system")
    if system is not None:
        if type(system) is not list:
            return "'system' must be a list of {\"text\": ...} blocks"
        for block in system:
            if type(block) is not dict or type(block.get("text")) is not str:
                return "'system' must be a list of {\"text\": ...} blocks"
    expected = "user"
    for index, message in enumerate(messages):
        if type(message) is not dict:
            return f"messages[{index}] is not an object"
        role = message.get("role")
        if role != expected:
            return f"messages[{index}].role is {role!r}, expected {expected!r} (turns alternate user/assistant)"
        content = message.get("content")
        if type(content) is not list or not content:
            return f"messages[{index}].content must be a non-empty list of content blocks"
        for block in content:
            if type(block) is not dict or not block:
                return f"messages[{index}].content holds a block that is not an object"
            for key in block:
                if key not in _CONTENT_BLOCKS:
                    return f"messages[{index}].content has an unknown block type {key!r}"
            text = block.get("text")
            if text is not None and type(text) is not str:
                return f"messages[{index}].content text must be a string"
        expected = "assistant" if expected == "user" else "user"
    if expected != "user":
        return "the last message must be the assistant's (the turn the model learns)"
    return None


def _rft_error(row: Any) -> str | None:
    if type(row) is not dict:
        return "not a JSON object"
    messages = row.get("messages")
    if type(messages) is not list or not messages:
        return "'messages' must be a non-empty list"
    has_user = False
    for index, message in enumerate(messages):
        if type(message) is not dict:
            return f"messages[{index}] is not an object"
        role = message.get("role")
        if role not in _RFT_ROLES:
            return f"messages[{index}].role {role!r} is not one of system, user, assistant, tool"
        has_user = has_user or role == "user"
        content = message.get("content")
        if type(content) is list:
            for part in content:
                if type(part) is not dict:
                    return f"messages[{index}].content parts must be objects"
        elif type(content) is not str:
            return f"messages[{index}].content must be a string or a list of parts"
    if not has_user:
        return "no user message"
    if messages[-1].get("role") in _ASSISTANT_ROLES:
        return "the last message is the assistant's: RFT rows end before the turn the model produces"
    if "reference_answer" not in row:
        metadata = row.get("metadata")
        if type(metadata) is not dict or "reference_answer" not in metadata:
            return "missing reference_answer (top level or under metadata)"
    identifier = row.get("id")
    if identifier is not None and type(identifier) not in (str, int):
        return "'id' must be a string or a number"
    tools = row.get("tools")
    if tools is not None and type(tools) is not list:
        return "'tools' must be a list"
    return None


def _gen_qa_error(row: Any) -> str | None:
    if type(row) is not dict:
        return "not a JSON object"
    query = row.get("query")
    if type(query) is not str or not query.strip():
        return "'query' must be a non-empty string"
    if type(row.get("response")) is not str:
        return "'response' must be a string (the expected answer)"
    system = row.get("system")
    if system is not None and type(system) is not str:
        return "'system' must be a string"
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "sft": _sft_error,
    "rft": _rft_error,
    "gen_qa": _gen_qa_error,
    "rft_eval": _rft_error,
}


def validate_stream(
    stream: Readable | BinaryIO,
    kind: str,
    *,
    max_errors: int = MAX_REPORTED_ERRORS,
    chunk_bytes: int = CHUNK_BYTES,
    sample: list[dict[str, Any]] | None = None,
    sample_size: int = 0,
) -> DatasetReport:
    """Check every line of ``stream`` as a ``kind`` row.

    ``sample`` (when given) receives up to ``sample_size`` valid rows drawn uniformly from the whole
    file (deterministic seed), e.g. for the grader smoke test.
    """
    check = CHECKS[kind]
    rng = random.Random(0)
    report = DatasetReport(kind=kind)
    loads = json.loads
    errors = report.errors
    rows = 0
    error_count = 0
    size = 0
    blank = 0
    for number, line in iter_lines(stream, chunk_bytes=chunk_bytes):
        if line is None:
            message: str | None = f"longer than {MAX_LINE_BYTES >> 20} MiB"
        else:
            size += len(line) + 1
            if not line.strip():
                blank += 1
                continue
            try:
                row = loads(line)
            except ValueError as error:
                message = f"not valid JSON ({error.__class__.__name__}: {error})"
            else:
                message = check(row)
                if message is None:
                    rows += 1
                    if sample is not None:
                        # Reservoir sampling: a uniform sample of the whole file in one pass.
                        if len(sample) < sample_size:
                            sample.append(row)
                        else:
                            slot = rng.randrange(rows)
                            if slot < sample_size:
                                sample[slot] = row
                    continue
        error_count += 1
        if len(errors) < max_errors:
            errors.append(LineError(number, message or "invalid"))
    report.rows, report.error_count, report.bytes, report.blank_lines = rows, error_count, size, blank
    return report
