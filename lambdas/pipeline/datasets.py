"""Streaming validation of JSONL datasets with AWS's rules (docs/contracts/datasets.md).

A dataset is read in fixed-size chunks from any binary stream (an S3 ``StreamingBody``
or a local file) and checked line by line, so memory stays bounded by the chunk size
and the longest line, whatever the file size. Rows are parsed with ``json.loads`` and
checked with plain type tests (no pydantic per row): validating is CPU-bound and the
pre-flight Lambda has a fraction of a core.

Formats (``kind``), each rule with its source in docs/contracts/datasets.md:

- ``sft``: Converse, ``{"schemaVersion", "system"?, "toolConfig"?, "messages"}``; turns
  alternate user/assistant from user and end with the assistant; content blocks, media,
  reasoning and tool use as the model allows (:class:`Rules`);
- ``rft``: ``{"messages", "reference_answer"?, "id"?, "tools"?, ...}`` in the OpenAI chat
  format, no final assistant turn;
- ``gen_qa``: ``{"query", "response", "system"?, "images"?, "metadata"?}``;
- ``rft_eval``: the RFT format.

On the Bedrock road (``Rules(platform="bedrock")``) the formats are the same; a training file holds Bedrock's
record range for its method and model instead of one batch of rows, media sit in the bucket of the copy
Bedrock trains on, and Nova 2 reads fewer media formats (docs/contracts/bedrock-customization.md, "Datasets").
Validation also counts the characters of text in valid rows and of their answers (the Bedrock cost's tokens).

Every problem names its line and field (``line 7: messages[1].content[0].text: ...``);
any JSON value in any field is reported, never raised. Dataset-level rules (optional
fields on every row or on none, one media type per dataset, at least one batch of rows)
are checked in the same pass. The report keeps the first errors and counts them all.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 16 << 20
MAX_REPORTED_ERRORS = 10
# Repeated rows are found among the first million distinct rows: the set of their hashes stays bounded.
MAX_TRACKED_ROWS = 1_000_000
# Smallest datasets worth a GPU job (Bedrock's own minimum for SFT is 8 records).
MIN_ROWS = {"sft": 8, "rft": 8, "gen_qa": 5, "rft_eval": 5}
# Records a Bedrock customization job accepts in its training file, per method and model: (least, most).
# Sources in docs/contracts/bedrock-customization.md ("Datasets"). The most is also a Service Quota
# ("Sum of training and validation records"): preflight passes the account's value in ``Rules.max_rows``.
BEDROCK_ROWS = {
    ("sft", "nova-micro"): (8, 20_000),
    ("sft", "nova-lite"): (8, 20_000),
    ("sft", "nova-pro"): (8, 20_000),
    ("sft", "nova-2-lite"): (200, 20_000),
    ("rft", "nova-2-lite"): (100, 20_000),
}
BEDROCK_ROWS_SOURCE = "Bedrock's limit for Nova customization, docs/contracts/bedrock-customization.md"
# Nova 2 Lite on Bedrock reads fewer media formats than the SageMaker road (AWS's Bedrock dataset validator).
BEDROCK_NOVA2_FORMATS = {"image": ("gif", "jpeg", "png"), "video": ("mkv", "mov", "mp4"), "document": ("pdf",)}

SCHEMA_VERSION = "bedrock-conversation-2024"
# Strings the Nova chat template reserves; a prompt that contains one fails the training job.
RESERVED = (
    "System:",
    "SYSTEM:",
    "User:",
    "USER:",
    "Bot:",
    "BOT:",
    "Assistant:",
    "ASSISTANT:",
    "Thought:",
    "[EOS]",
    "<image>",
    "<video>",
    "<unk>",
)
_RESERVED = re.compile("|".join(re.escape(k) for k in RESERVED))
MEDIA_FORMATS = {
    "image": ("gif", "jpeg", "png", "webp"),
    "video": ("mkv", "mov", "mp4", "webm"),
    "document": ("pdf",),
}
MAX_IMAGES_PER_MESSAGE = 10
MAX_VIDEOS_PER_ROW = 1
_S3_PATH = re.compile(r"[\w\-/.]+", re.ASCII)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)

_SFT_FIELDS = ("schemaVersion", "system", "toolConfig", "messages")
_BLOCKS = ("text", "image", "video", "document", "reasoningContent", "toolUse", "toolResult")
_RFT_ROLES = frozenset({"system", "developer", "user", "assistant", "bot", "nova_assistant", "tool"})
_RFT_ASSISTANT = frozenset({"assistant", "bot", "nova_assistant"})
_RFT_MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id"})
# Optional fields that must be on every row once one row has them.
CONSISTENT_FIELDS = {
    "sft": ("system", "toolConfig", "reasoningContent", "toolUse", "toolResult"),
    "rft": ("id", "reference_answer", "tools"),
    "rft_eval": ("id", "reference_answer", "tools"),
    "gen_qa": ("system", "images"),
}


@dataclass(frozen=True)
class Rules:
    """What the model allows and how many rows the job needs.

    ``platform`` ``"bedrock"``: the dataset feeds a Bedrock customization job (or a Bedrock evaluation): the
    record limits of :data:`BEDROCK_ROWS` replace the batch-size floor (``max_rows``, when given, is the
    account's quota in place of the documented most), media must sit in ``media_bucket`` (the bucket of the
    staged copy Bedrock reads) and Nova 2 reads the formats of :data:`BEDROCK_NOVA2_FORMATS`.
    """

    model: str = "nova-2-lite"
    batch_size: int | None = None
    platform: str = "sagemaker"
    media_bucket: str | None = None
    max_rows: int | None = None
    limit_source: str = BEDROCK_ROWS_SOURCE

    @property
    def nova2(self) -> bool:
        return self.model.startswith("nova-2")

    @property
    def media(self) -> bool:
        return self.model != "nova-micro"

    def media_formats(self, kind: str) -> tuple[str, ...]:
        if self.platform == "bedrock" and self.nova2:
            return BEDROCK_NOVA2_FORMATS[kind]
        return MEDIA_FORMATS[kind]

    def row_limits(self, kind: str) -> tuple[int, int] | None:
        """(least, most) records of a ``kind`` file on Bedrock; None where Bedrock sets none (evaluations)."""
        if self.platform != "bedrock":
            return None
        limits = BEDROCK_ROWS.get((kind, self.model))
        if limits is None:
            return None
        return limits[0], self.max_rows if self.max_rows is not None else limits[1]


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
    batch_size: int | None = None
    schema_version_missing: int = 0
    duplicates: int = 0
    first_duplicate: int | None = None
    # (least, most) records on Bedrock (Rules.row_limits); None on SageMaker.
    limits: tuple[int, int] | None = None
    limit_source: str = BEDROCK_ROWS_SOURCE
    model: str = ""
    text_chars: int = 0
    answer_chars: int = 0

    @property
    def min_rows(self) -> int:
        if self.limits is not None:
            return self.limits[0]
        return max(MIN_ROWS[self.kind], self.batch_size or 0)

    def problems(self) -> list[str]:
        """Human-readable problems: the first errors, the total, a too-small (or, on Bedrock, too-large) dataset."""
        out = [str(e) for e in self.errors]
        if self.error_count > len(self.errors):
            out.append(f"... and {self.error_count - len(self.errors)} more invalid lines")
        if self.error_count:
            out.append(f"{self.error_count} of {self.rows + self.error_count} lines are invalid")
        if self.limits is not None:
            least, most = self.limits
            if not least <= self.rows <= most:
                bound = f"at least {least:,}" if self.rows < least else f"at most {most:,}"
                out.append(
                    f"{self.rows:,} valid rows; a Bedrock {self.kind.upper()} job on {self.model} takes {bound} "
                    f"records ({least:,} to {most:,}: {self.limit_source})"
                )
        elif self.rows < self.min_rows:
            if self.batch_size and self.batch_size >= MIN_ROWS[self.kind]:
                out.append(
                    f"{self.rows} valid rows; the job's global_batch_size is {self.batch_size}, "
                    f"so the dataset needs at least {self.batch_size} rows"
                )
            else:
                out.append(f"{self.rows} valid rows; a {self.kind} dataset needs at least {self.min_rows}")
        return out

    def warnings(self) -> list[str]:
        """Findings that do not stop the run."""
        out = []
        if self.duplicates:
            out.append(
                f"{self.duplicates} rows repeat an earlier row exactly (first at line {self.first_duplicate}): "
                "a repeated row weighs more in training and evaluation"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "bytes": self.bytes,
            "invalidLines": self.error_count,
            "firstErrors": [str(e) for e in self.errors],
            "minRows": self.min_rows,
            "duplicateRows": self.duplicates,
            "schemaVersionAdded": self.schema_version_missing,
            "warnings": self.warnings(),
            "maxRows": None if self.limits is None else self.limits[1],
            "textChars": self.text_chars,
            "answerChars": self.answer_chars,
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


# -- values ------------------------------------------------------------------------------------------


def show(value: Any) -> str:
    """A short rendering of any JSON value for an error message."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _reserved(text: str) -> bool:
    # Every reserved string holds ':', '<' or '[': most texts are cleared by three fast scans.
    return (":" in text or "<" in text or "[" in text) and _RESERVED.search(text) is not None


def _text(where: str, value: Any) -> str | None:
    """A problem with a text field (not a string, or holding a reserved string), or ``None``."""
    if type(value) is not str:
        return f"{where}: must be a string, not {_type_name(value)}"
    return _reserved_problem(where, value) if _reserved(value) else None


def _reserved_problem(where: str, text: str) -> str:
    found = _RESERVED.search(text)
    shown = found.group() if found else "?"
    return f"{where}: contains the reserved string {shown!r}, which fails the training job"


def _nonblank(where: str, value: Any) -> str | None:
    if type(value) is not str:
        return f"{where}: must be a string, not {_type_name(value)}"
    if not value.strip():
        return f"{where}: must not be empty"
    return None


def _optional_list(row: dict[str, Any], key: str, present: set[str], items: str) -> list[Any] | str:
    """``row[key]`` (noted in ``present``) when it is a non-empty list, ``[]`` when absent, else the problem."""
    if key not in row:
        return []
    present.add(key)
    value = row[key]
    if type(value) is not list or not value:
        return f"{key}: must be a non-empty list of {items}"
    return value


def _only(where: str, value: dict[str, Any], allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    for key in value:
        if key not in allowed:
            return f"{where}.{key}: unknown field (expected {', '.join(sorted(allowed))})"
    return None


# -- SFT (Converse) ------------------------------------------------------------------------------------


def _media(where: str, kind: str, value: Any, rules: Rules) -> str | None:
    if type(value) is not dict:
        return f"{where}: must be an object with format and source"
    if problem := _only(where, value, ("format", "source")):
        return problem
    fmt = value.get("format")
    formats = rules.media_formats(kind)
    if type(fmt) is not str or fmt.lower() not in formats:
        road = f" on Bedrock for {rules.model}" if formats is not MEDIA_FORMATS[kind] else ""
        return f"{where}.format: is {show(fmt)}, expected one of {', '.join(formats)}{road}"
    source = value.get("source")
    location = source.get("s3Location") if type(source) is dict else None
    if type(source) is not dict or len(source) != 1 or type(location) is not dict:
        return f'{where}.source: must be {{"s3Location": {{"uri", "bucketOwner"}}}}'
    if problem := _only(f"{where}.source.s3Location", location, ("uri", "bucketOwner")):
        return problem
    uri = location.get("uri")
    if type(uri) is not str or not uri.startswith("s3://") or not _S3_PATH.fullmatch(uri[5:]) or "/" not in uri[5:]:
        return (
            f"{where}.source.s3Location.uri: {show(uri)} is not an s3://bucket/key URI of letters, digits, "
            "'_', '-', '/' and '.'"
        )
    owner = location.get("bucketOwner")
    if type(owner) is not str or not _ACCOUNT.fullmatch(owner):
        return f"{where}.source.s3Location.bucketOwner: {show(owner)} is not a 12-digit AWS account ID"
    bucket = uri[5:].split("/", 1)[0]
    if rules.media_bucket is not None and bucket != rules.media_bucket:
        return (
            f"{where}.source.s3Location.uri: {show(uri)} is outside s3://{rules.media_bucket}, the bucket of the "
            "dataset copy Bedrock trains on; Bedrock reads media only from the dataset's own bucket"
        )
    return None


def _tool_config(value: Any) -> tuple[frozenset[str], str | None]:
    where = "toolConfig"
    if type(value) is not dict or type(value.get("tools")) is not list or not value["tools"]:
        return frozenset(), f'{where}.tools: must be a non-empty list of {{"toolSpec": ...}}'
    names: set[str] = set()
    for index, tool in enumerate(value["tools"]):
        at = f"{where}.tools[{index}].toolSpec"
        spec = tool.get("toolSpec") if type(tool) is dict else None
        if type(spec) is not dict:
            return frozenset(), f"{at}: must be an object with name, description and inputSchema"
        for key in ("name", "description"):
            if problem := _nonblank(f"{at}.{key}", spec.get(key)):
                return frozenset(), problem
        schema = spec.get("inputSchema")
        body = schema.get("json") if type(schema) is dict else None
        if type(body) is not dict or "type" not in body:
            return frozenset(), f"{at}.inputSchema.json: must be a JSON Schema object with a 'type'"
        if spec["name"] in names:
            return frozenset(), f"{at}.name: {spec['name']!r} is defined twice"
        names.add(spec["name"])
    return frozenset(names), None


class _Turn:
    """What the blocks of one message hold."""

    __slots__ = ("text_chars", "texts", "_media", "reasoning")

    def __init__(self) -> None:
        self.text_chars = 0
        self.texts: list[str] = []
        self._media: dict[str, int] | None = None
        self.reasoning = False

    @property
    def media(self) -> dict[str, int]:
        if self._media is None:
            self._media = {"image": 0, "video": 0, "document": 0}
        return self._media

    def plain_text(self) -> bool:
        """Only text blocks (the common message)."""
        return self._media is None and not self.reasoning

    def media_kind(self) -> str | None:
        kinds = [k for k, n in self.media.items() if n]
        return kinds[0] if kinds else None

    def problem(self, where: str) -> str | None:
        kinds = [k for k, n in self.media.items() if n]
        if len(kinds) > 1:
            return f"{where}: holds {' and '.join(kinds)}; a message holds one media type"
        if self.texts and not kinds and self.text_chars == 0:
            return f"{where}: the text is empty"
        if self.reasoning and kinds:
            return f"{where}: reasoning cannot be combined with {kinds[0]}"
        if self.media["image"] > MAX_IMAGES_PER_MESSAGE:
            return f"{where}: {self.media['image']} images; at most {MAX_IMAGES_PER_MESSAGE} per message"
        return None


class _ToolLedger:
    def __init__(self, tools: frozenset[str] | None) -> None:
        self.tools = tools
        self.uses: dict[str, int] = {}
        self.results: set[str] = set()

    def use(self, where: str, value: Any, turn: int) -> str | None:
        if type(value) is not dict:
            return f"{where}: must be an object with toolUseId, name and input"
        for key in ("toolUseId", "name"):
            if problem := _nonblank(f"{where}.{key}", value.get(key)):
                return problem
        if type(value.get("input")) is not dict:
            return f"{where}.input: must be an object, not {_type_name(value.get('input'))}"
        if self.tools is not None and value["name"] not in self.tools:
            return f"{where}.name: {value['name']!r} is not a tool of toolConfig ({', '.join(sorted(self.tools))})"
        if value["toolUseId"] in self.uses:
            return f"{where}.toolUseId: {value['toolUseId']!r} is used twice in the conversation"
        self.uses[value["toolUseId"]] = turn
        return None

    def result(self, where: str, value: Any, turn: int) -> str | None:
        if type(value) is not dict:
            return f"{where}: must be an object with toolUseId and content"
        if problem := _nonblank(f"{where}.toolUseId", value.get("toolUseId")):
            return problem
        ident = value["toolUseId"]
        if self.uses.get(ident, turn) >= turn:
            return f"{where}.toolUseId: {ident!r} answers no toolUse of an earlier turn"
        if ident in self.results:
            return f"{where}.toolUseId: {ident!r} has a second toolResult"
        self.results.add(ident)
        content = value.get("content")
        if type(content) is not list or not content:
            return f'{where}.content: must be a non-empty list of {{"text"}} or {{"json"}} items'
        for index, item in enumerate(content):
            at = f"{where}.content[{index}]"
            if type(item) is not dict or len(item) != 1 or not ("text" in item or "json" in item):
                return f'{at}: must be {{"text": ...}} or {{"json": ...}}'
            if "text" in item and (problem := _text(f"{at}.text", item["text"])):
                return problem
        return None


def _sft_block(
    where: str, block: Any, role: str, index: int, turn: _Turn, tools: _ToolLedger, rules: Rules
) -> str | None:
    if type(block) is not dict or len(block) != 1:
        return f"{where}: must be an object with exactly one of {', '.join(_BLOCKS)}"
    ((name, value),) = block.items()
    at = f"{where}.{name}"
    if name == "text":
        if problem := _text(at, value):
            return problem
        turn.text_chars += len(value)
        turn.texts.append(value)
    elif name in MEDIA_FORMATS:
        if role != "user":
            return f"{at}: media belongs in user turns only"
        if not rules.media:
            return f"{at}: {rules.model} is a text-only model"
        if name == "document" and not rules.nova2:
            return f"{at}: documents need a Nova 2 model ({rules.model} is Nova 1)"
        if problem := _media(at, name, value, rules):
            return problem
        turn.media[name] += 1
    elif name == "reasoningContent":
        if role != "assistant":
            return f"{at}: reasoning belongs in assistant turns only"
        if not rules.nova2:
            return f"{at}: reasoning content needs a Nova 2 model ({rules.model} is Nova 1)"
        inner = value.get("reasoningText") if type(value) is dict else None
        if type(value) is not dict or len(value) != 1 or type(inner) is not dict:
            return f'{at}: must be {{"reasoningText": {{"text": ...}}}}'
        if problem := _only(f"{at}.reasoningText", inner, ("text", "signature")) or _text(
            f"{at}.reasoningText.text", inner.get("text")
        ):
            return problem
        turn.reasoning = True
    elif name == "toolUse":
        if role != "assistant":
            return f"{at}: tool use belongs in assistant turns only"
        return tools.use(at, value, index)
    elif name == "toolResult":
        if role != "user":
            return f"{at}: tool results belong in user turns only"
        return tools.result(at, value, index)
    else:
        return f"{at}: unknown block type (expected one of {', '.join(_BLOCKS)})"
    return None


# A row check returns a problem, or (the optional fields present, the media type, the prompts).
_Found = tuple[frozenset[str], str | None, list[str]]


class Check:
    """Row and dataset rules of one dataset kind; keeps the state of the dataset-level rules."""

    def __init__(self, kind: str, rules: Rules, prompts: Callable[[str], None] | None = None) -> None:
        self.kind = kind
        self.rules = rules
        self.prompts = prompts
        self.consistent = CONSISTENT_FIELDS[kind]
        self.first: tuple[int, frozenset[str]] | None = None
        self.media_kind: tuple[int, str] | None = None
        self.schema_missing = 0
        # Text characters of the valid rows (prompts and answers) and of their answers alone.
        self.text_chars = 0
        self.answer_chars = 0
        self._prompt = 0
        self._answer = 0
        self.row_check = {"sft": self._sft, "rft": self._rft, "rft_eval": self._rft, "gen_qa": self._gen_qa}[kind]

    def __call__(self, row: Any, line: int) -> str | None:
        if type(row) is not dict:
            return f"the line is {_type_name(row)}, not a JSON object"
        self._prompt = self._answer = 0
        result = self.row_check(row)
        if isinstance(result, str):
            return result
        present, media, prompts = result
        if problem := self._dataset_rules(line, present, media):
            return problem
        if self.kind == "sft" and "schemaVersion" not in row:
            self.schema_missing += 1
        self.text_chars += self._prompt + self._answer
        self.answer_chars += self._answer
        if self.prompts is not None:
            for prompt in prompts:
                self.prompts(prompt)
        return None

    def _dataset_rules(self, line: int, present: frozenset[str], media: str | None) -> str | None:
        if self.first is None:
            self.first = (line, present)
        else:
            first_line, first_present = self.first
            for name in self.consistent:
                if (name in present) != (name in first_present):
                    here, there = ("has", "has not") if name in present else ("has not", "has")
                    return (
                        f"{name}: this row {here} it but line {first_line} {there}: an optional field must be on "
                        "every row or on none"
                    )
        if media is not None:
            if self.media_kind is None:
                self.media_kind = (line, media)
            elif self.media_kind[1] != media:
                return (
                    f"messages: this row holds {media} but line {self.media_kind[0]} holds {self.media_kind[1]}: "
                    "a dataset keeps to one media type"
                )
        return None

    def _sft(self, row: dict[str, Any]) -> str | _Found:
        rules = self.rules
        if problem := _only("row", row, _SFT_FIELDS):
            return problem.removeprefix("row.")
        present: set[str] = set()
        if "schemaVersion" in row:
            version = row["schemaVersion"]
            if type(version) is not str or not version:
                return f"schemaVersion: must be a string such as {SCHEMA_VERSION!r}, not {show(version)}"
        system = _optional_list(row, "system", present, '{"text": ...} blocks')
        if isinstance(system, str):
            return system
        for index, block in enumerate(system):
            if type(block) is not dict or len(block) != 1 or "text" not in block:
                return f'system[{index}]: must be {{"text": ...}}'
            if problem := _text(f"system[{index}].text", block["text"]):
                return problem
            self._prompt += len(block["text"])
        tools: frozenset[str] | None = None
        if "toolConfig" in row:
            present.add("toolConfig")
            tools, problem = _tool_config(row["toolConfig"])
            if problem:
                return problem
        messages = row.get("messages")
        if type(messages) is not list or len(messages) < 2:
            return "messages: must be a list of at least two turns, user then assistant"
        ledger = _ToolLedger(tools)
        prompts: list[str] = []
        media: str | None = None
        videos = 0
        for index, message in enumerate(messages):
            # Paths such as messages[3].content[1] are built only for a message that has a problem.
            if type(message) is not dict:
                return f"messages[{index}]: must be an object with role and content, not {_type_name(message)}"
            if len(message) > 2 and (problem := _only(f"messages[{index}]", message, ("role", "content"))):
                return problem
            role = message.get("role")
            expected = "user" if index % 2 == 0 else "assistant"
            if role != expected:
                return (
                    f"messages[{index}].role: is {show(role)}, expected {expected!r} (turns alternate user, assistant)"
                )
            content = message.get("content")
            if type(content) is not list or not content:
                return f"messages[{index}].content: must be a non-empty list of content blocks"
            turn = _Turn()
            for position, block in enumerate(content):
                value = block.get("text") if type(block) is dict and len(block) == 1 else None
                if type(value) is str:  # the common block, checked inline
                    if _reserved(value):
                        return _reserved_problem(f"messages[{index}].content[{position}].text", value)
                    turn.text_chars += len(value)
                    turn.texts.append(value)
                    continue
                where = f"messages[{index}].content[{position}]"
                if problem := _sft_block(where, block, role, index, turn, ledger, rules):
                    return problem
                name = next(iter(block))
                if name in ("reasoningContent", "toolUse", "toolResult"):
                    present.add(name)
            if turn.plain_text():
                if turn.texts and turn.text_chars == 0:
                    return f"messages[{index}].content: the text is empty"
            elif problem := turn.problem(f"messages[{index}].content"):
                return problem
            else:
                videos += turn.media["video"]
                if videos > MAX_VIDEOS_PER_ROW:
                    return f"messages[{index}].content: a row holds at most {MAX_VIDEOS_PER_ROW} video"
                media = turn.media_kind() or media
            if role == "user":
                self._prompt += turn.text_chars
                if turn.texts:
                    prompts.append("\n".join(turn.texts))
            else:
                self._answer += turn.text_chars
        if len(messages) % 2:
            return f"messages[{len(messages) - 1}]: the last turn must be the assistant's (the turn the model learns)"
        return frozenset(present), media, prompts

    def _rft(self, row: dict[str, Any]) -> str | _Found:
        messages = row.get("messages")
        if type(messages) is not list or not messages:
            return "messages: must be a non-empty list"
        prompts: list[str] = []
        roles: list[str | None] = []
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            if type(message) is not dict:
                return f"{where}: must be an object with role and content, not {_type_name(message)}"
            if problem := _only(where, message, _RFT_MESSAGE_FIELDS):
                return problem
            role = message.get("role")
            if role is not None and (type(role) is not str or role.lower() not in _RFT_ROLES):
                return f"{where}.role: is {show(role)}, expected one of system, developer, user, assistant, tool"
            role = role.lower() if type(role) is str else None
            roles.append("system" if role == "developer" else role)
            content = message.get("content")
            text: str | None = None
            if type(content) is str:
                if not content.strip():
                    return f"{where}.content: must not be empty"
                text = content
            elif type(content) is list:
                if not content:
                    return f"{where}.content: must not be an empty list"
                parts = []
                for position, part in enumerate(content):
                    if type(part) is not dict:
                        return f"{where}.content[{position}]: must be an object, not {_type_name(part)}"
                    if type(part.get("text")) is str:
                        parts.append(part["text"])
                text = "\n".join(parts) if parts else None
            elif content is not None:
                return f"{where}.content: must be a string or a list of parts, not {_type_name(content)}"
            if "tool_calls" in message and type(message["tool_calls"]) is not list:
                return f"{where}.tool_calls: must be a list, not {_type_name(message['tool_calls'])}"
            if "tool_call_id" in message and type(message["tool_call_id"]) is not str:
                return f"{where}.tool_call_id: must be a string, not {_type_name(message['tool_call_id'])}"
            if text:
                self._prompt += len(text)
            if role == "user" and text:
                prompts.append(text)
        if "system" in roles and roles[0] != "system":
            return f"messages[{roles.index('system')}].role: a system message must come first"
        if "user" not in roles:
            return "messages: no user message"
        if roles[-1] in _RFT_ASSISTANT:
            return (
                f"messages[{len(roles) - 1}].role: the last message is the assistant's; RFT rows end before the turn "
                "the model produces"
            )
        present: set[str] = set()
        if "id" in row:
            present.add("id")
            ident = row["id"]
            if type(ident) is str and not ident.strip() or type(ident) not in (str, int):
                return f"id: must be a non-empty string or a number, not {show(ident)}"
        metadata = row.get("metadata")
        where, reference = "reference_answer", row.get("reference_answer")
        if "reference_answer" not in row and type(metadata) is dict and "reference_answer" in metadata:
            where, reference = "metadata.reference_answer", metadata["reference_answer"]
        if where != "reference_answer" or "reference_answer" in row:
            present.add("reference_answer")
            if reference is None or reference == "" or reference == {} or reference == []:
                return f"{where}: must not be empty"
            if type(reference) is str and not reference.strip():
                return f"{where}: must not be empty"
        if "tools" in row:
            present.add("tools")
            if problem := _rft_tools(row["tools"]):
                return problem
        # The prompt the model answers is the last user turn.
        return frozenset(present), None, prompts[-1:] if self.kind == "rft_eval" else prompts

    def _gen_qa(self, row: dict[str, Any]) -> str | _Found:
        for key in ("query", "response"):
            if problem := _nonblank(key, row.get(key)):
                return problem
        present: set[str] = set()
        for key in ("system", "metadata"):
            if key in row:
                present.add(key)
                if type(row[key]) is not str:
                    return f"{key}: must be a string, not {_type_name(row[key])}"
        images = _optional_list(row, "images", present, '{"data": "data:image/...;base64,..."}')
        if isinstance(images, str):
            return images
        self._prompt += len(row["query"]) + len(row.get("system", ""))
        self._answer += len(row["response"])
        for index, image in enumerate(images):
            data = image.get("data") if type(image) is dict else None
            if type(data) is not str or not data.startswith("data:image/") or ";base64," not in data.lower():
                return f'images[{index}].data: must be a "data:image/<format>;base64,<data>" string'
        return frozenset(present), None, [row["query"]]


def _rft_tools(tools: Any) -> str | None:
    if type(tools) is not list or not tools:
        return "tools: must be a non-empty list of function tools"
    names: set[str] = set()
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if type(tool) is not dict or tool.get("type") != "function" or type(tool.get("function")) is not dict:
            return f'{at}: must be {{"type": "function", "function": {{...}}}}'
        function = tool["function"]
        for key in ("name", "description"):
            if problem := _nonblank(f"{at}.function.{key}", function.get(key)):
                return problem
        parameters = function.get("parameters")
        if (
            type(parameters) is not dict
            or parameters.get("type") != "object"
            or type(parameters.get("properties")) is not dict
        ):
            return f'{at}.function.parameters: must be {{"type": "object", "properties": {{...}}}}'
        if function["name"] in names:
            return f"{at}.function.name: {function['name']!r} is defined twice"
        names.add(function["name"])
    return None


def validate_stream(
    stream: Readable | BinaryIO,
    kind: str,
    *,
    rules: Rules | None = None,
    max_errors: int = MAX_REPORTED_ERRORS,
    chunk_bytes: int = CHUNK_BYTES,
    sample: list[dict[str, Any]] | None = None,
    sample_size: int = 0,
    prompts: Callable[[str], None] | None = None,
) -> DatasetReport:
    """Check every line of ``stream`` as a ``kind`` row under ``rules`` (default: Nova 2 Lite, no batch).

    ``sample`` (when given) receives up to ``sample_size`` valid rows drawn uniformly from the whole
    file (deterministic seed), e.g. for the grader smoke test. ``prompts`` (when given) is called
    with the prompt text of every valid row (user turns; the query of gen_qa), e.g. for the leakage check.
    """
    rules = rules or Rules()
    check = Check(kind, rules, prompts)
    rng = random.Random(0)
    report = DatasetReport(
        kind=kind,
        batch_size=rules.batch_size,
        limits=rules.row_limits(kind),
        limit_source=rules.limit_source,
        model=rules.model,
    )
    loads = json.loads
    errors = report.errors
    rows = 0
    error_count = 0
    size = 0
    blank = 0
    seen: set[int] = set()
    duplicates = 0
    for number, line in iter_lines(stream, chunk_bytes=chunk_bytes):
        if line is None:
            message: str | None = f"longer than {MAX_LINE_BYTES >> 20} MiB"
        else:
            size += len(line) + 1
            stripped = line.strip()
            if not stripped:
                blank += 1
                continue
            try:
                row = loads(line)
            except RecursionError:
                message = "nested too deeply to read"
            except ValueError as error:
                message = f"not valid JSON ({error.__class__.__name__}: {error})"
            else:
                try:
                    message = check(row, number)
                except RecursionError:
                    message = "nested too deeply to check"
                if message is None:
                    rows += 1
                    digest = hash(stripped)
                    if digest in seen:
                        duplicates += 1
                        if report.first_duplicate is None:
                            report.first_duplicate = number
                    elif len(seen) < MAX_TRACKED_ROWS:
                        seen.add(digest)
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
    report.schema_version_missing = check.schema_missing
    report.text_chars, report.answer_chars = check.text_chars, check.answer_chars
    report.duplicates = duplicates
    return report


def with_schema_version(stream: Readable | BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The lines of a valid SFT dataset, ``"schemaVersion": "bedrock-conversation-2024"`` added where missing.

    A row that has a ``schemaVersion`` passes byte for byte; a row without one gains the field as its first
    key and keeps the rest of its text unchanged.
    """
    prefix = b'{"schemaVersion": "' + SCHEMA_VERSION.encode() + b'", '
    for _, line in iter_lines(stream, chunk_bytes=chunk_bytes):
        if line is None:
            raise ValueError("a line longer than the limit reached staging (validate the dataset first)")
        stripped = line.strip()
        if stripped and "schemaVersion" not in json.loads(stripped):
            body = stripped[1:].lstrip()
            line = prefix[:-2] + b"}" if body == b"}" else prefix + body
        yield line + b"\n"
