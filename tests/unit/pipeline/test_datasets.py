"""Streaming dataset validation: formats, line numbers, bounded memory, sampling."""

from __future__ import annotations

import io
import json
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.pipeline import datasets
from tests.unit.pipeline import samples


class CountingStream(io.BytesIO):
    """A stream that records the largest read request (the validator must read in chunks)."""

    largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)


def _validate(rows_or_bytes, kind: str, **kwargs) -> datasets.DatasetReport:
    data = rows_or_bytes if isinstance(rows_or_bytes, bytes) else samples.jsonl(rows_or_bytes)
    return datasets.validate_stream(io.BytesIO(data), kind, **kwargs)


@pytest.mark.parametrize(
    ("kind", "rows"),
    [
        ("sft", samples.sft_rows()),
        ("rft", samples.rft_rows()),
        ("gen_qa", samples.eval_rows()),
        ("rft_eval", samples.rft_rows()),
    ],
)
def test_valid_datasets_pass(kind: str, rows: list) -> None:
    report = _validate(rows, kind)
    assert report.problems() == [] and report.rows == len(rows)


IMAGE = {"format": "png", "source": {"s3Location": {"uri": "s3://media/cat.png", "bucketOwner": "123456789012"}}}
VIDEO = {"format": "mp4", "source": {"s3Location": {"uri": "s3://media/cat.mp4", "bucketOwner": "123456789012"}}}
PDF = {"format": "pdf", "source": {"s3Location": {"uri": "s3://media/cat.pdf", "bucketOwner": "123456789012"}}}
REASONING = {"reasoningContent": {"reasoningText": {"text": "think"}}}
TOOLS = {"tools": [{"toolSpec": {"name": "f", "description": "d", "inputSchema": {"json": {"type": "object"}}}}]}
RFT_TOOL = {
    "type": "function",
    "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}},
}


def sft(*turns: list, **fields) -> dict:
    """An SFT row whose turns alternate user/assistant, each turn a list of blocks."""
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": blocks} for i, blocks in enumerate(turns)]
    return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}], "messages": messages, **fields}


def text(value: Any) -> dict:
    return {"text": value}


def rft(*messages: dict, **fields) -> dict:
    return {"id": "x", "messages": list(messages), "reference_answer": "a", **fields}


def user(content) -> dict:
    return {"role": "user", "content": content}


def with_media(block: dict) -> dict:
    return sft([text("q"), block], [text("a")])


# One case per rule: (kind, model, the 9th row after 8 valid ones, the exact start of its message).
RULES = [
    # SFT: row shape
    ("sft", "nova-lite", [1, 2], "the line is a list, not a JSON object"),
    ("sft", "nova-lite", {**sft([text("q")], [text("a")]), "extra": 1}, "extra: unknown field"),
    ("sft", "nova-lite", sft([text("q")], [text("a")], schemaVersion=3), "schemaVersion: must be a string"),
    ("sft", "nova-lite", sft([text("q")], [text("a")], system="be nice"), "system: must be a non-empty list"),
    ("sft", "nova-lite", sft([text("q")], [text("a")], system=[{"text": 4}]), "system[0].text: must be a string"),
    ("sft", "nova-lite", sft([text("q")]), "messages: must be a list of at least two turns"),
    (
        "sft",
        "nova-lite",
        {**sft(), "messages": [user([text("q")]), user([text("a")])]},
        "messages[1].role: is \"user\", expected 'assistant'",
    ),
    (
        "sft",
        "nova-lite",
        {
            **sft(),
            "messages": [{"role": "USER", "content": [text("q")]}, {"role": "assistant", "content": [text("a")]}],
        },
        'messages[0].role: is "USER"',
    ),
    (
        "sft",
        "nova-lite",
        sft([text("q")], [text("a")], [text("q2")]),
        "messages[2]: the last turn must be the assistant's",
    ),
    (
        "sft",
        "nova-lite",
        {
            **sft(),
            "messages": [
                {"role": "user", "content": [text("q")], "x": 1},
                {"role": "assistant", "content": [text("a")]},
            ],
        },
        "messages[0].x: unknown field",
    ),
    (
        "sft",
        "nova-lite",
        {**sft(), "messages": [user("q"), {"role": "assistant", "content": [text("a")]}]},
        "messages[0].content: must be a non-empty list",
    ),
    ("sft", "nova-lite", sft([{"audio": "x"}], [text("a")]), "messages[0].content[0].audio: unknown block type"),
    (
        "sft",
        "nova-lite",
        sft([{"text": "q", "image": IMAGE}], [text("a")]),
        "messages[0].content[0]: must be an object with exactly one of",
    ),
    ("sft", "nova-lite", sft([text("")], [text("a")]), "messages[0].content: the text is empty"),
    ("sft", "nova-lite", sft([text(["q"])], [text("a")]), "messages[0].content[0].text: must be a string, not a list"),
    # SFT: reserved strings, in any text
    (
        "sft",
        "nova-lite",
        sft([text("User: hi")], [text("a")]),
        "messages[0].content[0].text: contains the reserved string 'User:'",
    ),
    (
        "sft",
        "nova-lite",
        sft([text("q")], [text("ok [EOS]")]),
        "messages[1].content[0].text: contains the reserved string '[EOS]'",
    ),
    (
        "sft",
        "nova-lite",
        sft([text("q")], [text("a")], system=[text("Bot: be nice")]),
        "system[0].text: contains the reserved string 'Bot:'",
    ),
    (
        "sft",
        "nova-lite",
        sft([text("see <image>")], [text("a")]),
        "messages[0].content[0].text: contains the reserved string '<image>'",
    ),
    # SFT: media
    (
        "sft",
        "nova-lite",
        sft([text("q")], [{"image": IMAGE}]),
        "messages[1].content[0].image: media belongs in user turns only",
    ),
    (
        "sft",
        "nova-micro",
        with_media({"image": IMAGE}),
        "messages[0].content[1].image: nova-micro is a text-only model",
    ),
    (
        "sft",
        "nova-lite",
        with_media({"document": PDF}),
        "messages[0].content[1].document: documents need a Nova 2 model",
    ),
    (
        "sft",
        "nova-lite",
        with_media({"image": {**IMAGE, "format": "bmp"}}),
        'messages[0].content[1].image.format: is "bmp", expected one of gif, jpeg, png, webp',
    ),
    (
        "sft",
        "nova-lite",
        with_media({"video": {**VIDEO, "format": "avi"}}),
        'messages[0].content[1].video.format: is "avi"',
    ),
    (
        "sft",
        "nova-2-lite",
        with_media({"document": {**PDF, "format": "docx"}}),
        'messages[0].content[1].document.format: is "docx", expected one of pdf',
    ),
    (
        "sft",
        "nova-lite",
        with_media({"image": {**IMAGE, "source": {"bytes": "AAAA"}}}),
        "messages[0].content[1].image.source: must be",
    ),
    (
        "sft",
        "nova-lite",
        with_media(
            {"image": {**IMAGE, "source": {"s3Location": {"uri": "https://x/y.png", "bucketOwner": "123456789012"}}}}
        ),
        'messages[0].content[1].image.source.s3Location.uri: "https://x/y.png" is not an s3://bucket/key URI',
    ),
    (
        "sft",
        "nova-lite",
        with_media(
            {"image": {**IMAGE, "source": {"s3Location": {"uri": "s3://media/a b.png", "bucketOwner": "123456789012"}}}}
        ),
        "messages[0].content[1].image.source.s3Location.uri:",
    ),
    (
        "sft",
        "nova-lite",
        with_media({"image": {**IMAGE, "source": {"s3Location": {"uri": "s3://media/a.png"}}}}),
        "messages[0].content[1].image.source.s3Location.bucketOwner: null is not a 12-digit AWS account ID",
    ),
    (
        "sft",
        "nova-lite",
        sft([text("q")] + [{"image": IMAGE}] * 11, [text("a")]),
        "messages[0].content: 11 images; at most 10 per message",
    ),
    (
        "sft",
        "nova-lite",
        sft([text("q"), {"video": VIDEO}], [text("a")], [text("q"), {"video": VIDEO}], [text("a")]),
        "messages[2].content: a row holds at most 1 video",
    ),
    (
        "sft",
        "nova-lite",
        sft([{"image": IMAGE}, {"video": VIDEO}], [text("a")]),
        "messages[0].content: holds image and video; a message holds one media type",
    ),
    # SFT: reasoning
    (
        "sft",
        "nova-lite",
        sft([text("q")], [REASONING, text("a")]),
        "messages[1].content[0].reasoningContent: reasoning content needs a Nova 2 model",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([REASONING, text("q")], [text("a")]),
        "messages[0].content[0].reasoningContent: reasoning belongs in assistant turns only",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [{"reasoningContent": {"reasoningText": "x"}}, text("a")]),
        "messages[1].content[0].reasoningContent: must be",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [{"reasoningContent": {"reasoningText": {"text": "Thought: x"}}}, text("a")]),
        "messages[1].content[0].reasoningContent.reasoningText.text: contains the reserved string 'Thought:'",
    ),
    # SFT: tools
    (
        "sft",
        "nova-2-lite",
        sft([{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}], [text("a")]),
        "messages[0].content[0].toolUse: tool use belongs in assistant turns only",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([{"toolResult": {"toolUseId": "t", "content": [text("r")]}}], [text("a")]),
        "messages[0].content[0].toolResult.toolUseId: 't' answers no toolUse of an earlier turn",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [text("a")], toolConfig={"tools": []}),
        "toolConfig.tools: must be a non-empty list",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [text("a")], toolConfig={"tools": TOOLS["tools"] * 2}),
        "toolConfig.tools[1].toolSpec.name: 'f' is defined twice",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [{"toolUse": {"toolUseId": "t", "name": "g", "input": {}}}], toolConfig=TOOLS),
        "messages[1].content[0].toolUse.name: 'g' is not a tool of toolConfig",
    ),
    (
        "sft",
        "nova-2-lite",
        sft([text("q")], [{"toolUse": {"toolUseId": "t", "name": "f", "input": "x"}}], toolConfig=TOOLS),
        "messages[1].content[0].toolUse.input: must be an object",
    ),
    # RFT
    ("rft", "nova-2-lite", rft(), "messages: must be a non-empty list"),
    (
        "rft",
        "nova-2-lite",
        rft(user("q"), {"role": "assistant", "content": "a"}),
        "messages[1].role: the last message is the assistant's",
    ),
    ("rft", "nova-2-lite", rft({"role": "system", "content": "s"}), "messages: no user message"),
    ("rft", "nova-2-lite", rft({"role": "robot", "content": "q"}), 'messages[0].role: is "robot", expected one of'),
    ("rft", "nova-2-lite", rft({"role": ["user"], "content": "q"}), 'messages[0].role: is ["user"]'),
    (
        "rft",
        "nova-2-lite",
        rft(user("q"), {"role": "system", "content": "s"}, user("q")),
        "messages[1].role: a system message must come first",
    ),
    ("rft", "nova-2-lite", rft(user("  ")), "messages[0].content: must not be empty"),
    ("rft", "nova-2-lite", rft(user(5)), "messages[0].content: must be a string or a list of parts, not a number"),
    ("rft", "nova-2-lite", rft(user(["q"])), "messages[0].content[0]: must be an object, not a string"),
    ("rft", "nova-2-lite", rft({**user("q"), "name": "x"}), "messages[0].name: unknown field"),
    ("rft", "nova-2-lite", rft(user("q"), reference_answer=""), "reference_answer: must not be empty"),
    ("rft", "nova-2-lite", rft(user("q"), id=""), "id: must be a non-empty string or a number"),
    ("rft", "nova-2-lite", rft(user("q"), tools=[{"type": "web"}]), "tools[0]: must be"),
    ("rft", "nova-2-lite", rft(user("q"), tools=[RFT_TOOL, RFT_TOOL]), "tools[1].function.name: 'f' is defined twice"),
    # gen_qa
    ("gen_qa", "nova-lite", {"query": "", "response": "a"}, "query: must not be empty"),
    ("gen_qa", "nova-lite", {"query": "q", "response": 3, "system": "s"}, "response: must be a string, not a number"),
    ("gen_qa", "nova-lite", {"query": "q", "response": "a", "system": ["s"]}, "system: must be a string, not a list"),
    (
        "gen_qa",
        "nova-lite",
        {"query": "q", "response": "a", "system": "s", "metadata": {"k": 1}},
        "metadata: must be a string, not an object",
    ),
    (
        "gen_qa",
        "nova-lite",
        {"query": "q", "response": "a", "system": "s", "images": [{"data": "http://x"}]},
        'images[0].data: must be a "data:image/<format>;base64,<data>" string',
    ),
]


@pytest.mark.parametrize(
    ("kind", "model", "row", "expected"),
    RULES,
    ids=[f"{k}-{m}-{e[:48]}" for k, _, m, e in [(r[0], None, r[1], r[3]) for r in RULES]],
)
def test_each_rule_names_the_line_and_the_field(kind: str, model: str, row, expected: str) -> None:
    valid = {"sft": samples.sft_rows(8), "rft": samples.rft_rows(8), "gen_qa": samples.eval_rows(8)}[kind]
    report = _validate([*valid, row], kind, rules=datasets.Rules(model=model))
    assert report.error_count == 1, report.errors
    assert report.errors[0].line == 9 and report.errors[0].message.startswith(expected), report.errors[0].message


# What AWS accepts passes (each case from the AWS documentation or the SDK's accepted records).
ACCEPTED = [
    ("sft", "nova-lite", with_media({"image": IMAGE})),
    ("sft", "nova-lite", sft([text("q")] + [{"image": IMAGE}] * 10, [text("a")])),
    ("sft", "nova-pro", with_media({"video": {**VIDEO, "format": "MOV"}})),
    ("sft", "nova-2-lite", with_media({"document": PDF})),
    ("sft", "nova-2-lite", sft([text("q")], [REASONING, text("a")])),
    ("sft", "nova-lite", sft([text("q")], [text("a")], schemaVersion="any-string")),
    (
        "sft",
        "nova-2-lite",
        sft(
            [text("q")],
            [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}],
            [{"toolResult": {"toolUseId": "t", "content": [{"json": {"v": 1}}]}}],
            [text("a")],
            toolConfig=TOOLS,
        ),
    ),
    ("rft", "nova-2-lite", rft({"role": "developer", "content": "s"}, user("q"))),
    ("rft", "nova-2-lite", rft({"role": "System", "content": "s"}, {"role": "USER", "content": "q"})),
    (
        "rft",
        "nova-2-lite",
        rft(
            user("q"),
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
            {"role": "tool", "content": "r", "tool_call_id": "c"},
        ),
    ),
    ("rft", "nova-2-lite", rft(user("q"), tools=[RFT_TOOL])),
    ("rft", "nova-2-lite", rft(user([{"type": "text", "text": "q"}]), reference_answer={"final": 3})),
    ("gen_qa", "nova-lite", {"query": "q", "response": "a", "system": "s", "metadata": "tag"}),
]


@pytest.mark.parametrize(("kind", "model", "row"), ACCEPTED)
def test_what_aws_accepts_passes(kind: str, model: str, row) -> None:
    # Every row of the file has the same optional fields, as the consistency rule asks.
    report = _validate([row] * 8, kind, rules=datasets.Rules(model=model))
    assert report.problems() == [], report.problems()


def test_rft_rows_without_reference_answer_pass_when_none_has_one() -> None:
    rows = [{k: v for k, v in row.items() if k != "reference_answer"} for row in samples.rft_rows(8)]
    assert _validate(rows, "rft").problems() == []


@pytest.mark.parametrize(
    ("kind", "rows", "expected"),
    [
        (
            "sft",
            [*samples.sft_rows(8), {k: v for k, v in samples.sft_rows(1)[0].items() if k != "system"}],
            "system: this row has not it but line 1 has",
        ),
        ("rft", [*samples.rft_rows(8), rft(user("q"), tools=[RFT_TOOL])], "tools: this row has it but line 1 has not"),
        ("rft", [*samples.rft_rows(8), {"messages": [user("q")], "reference_answer": "a"}], "id: this row has not it"),
        (
            "gen_qa",
            [*samples.eval_rows(8), {"query": "q", "response": "a"}],
            "system: this row has not it but line 1 has",
        ),
        (
            "sft",
            [*[with_media({"image": IMAGE})] * 8, with_media({"video": VIDEO})],
            "messages: this row holds video but line 1 holds image",
        ),
    ],
)
def test_optional_fields_and_media_types_are_the_same_on_every_row(kind: str, rows: list, expected: str) -> None:
    report = _validate(rows, kind)
    assert [str(e) for e in report.errors] == [f"line 9: {expected}"] or report.errors[0].message.startswith(
        expected
    ), report.errors


def test_reference_answer_under_metadata_is_accepted() -> None:
    row = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
        "metadata": {"reference_answer": 3},
    }
    assert _validate([row] * 8, "rft").problems() == []


def test_a_dataset_needs_a_global_batch_of_rows() -> None:
    report = _validate(samples.sft_rows(31), "sft", rules=datasets.Rules(batch_size=32))
    assert report.problems() == [
        "31 valid rows; the job's global_batch_size is 32, so the dataset needs at least 32 rows"
    ]
    assert _validate(samples.sft_rows(32), "sft", rules=datasets.Rules(batch_size=32)).problems() == []


def test_repeated_rows_are_a_warning_not_a_problem() -> None:
    rows = samples.eval_rows(8)
    report = _validate([*rows, rows[2], rows[2]], "gen_qa")
    assert report.problems() == []
    assert report.warnings() == [
        "2 rows repeat an earlier row exactly (first at line 9): a repeated row weighs more in training and evaluation"
    ]


def test_missing_schema_versions_are_counted_and_added_in_the_staged_copy() -> None:
    rows = samples.sft_rows(8)
    for row in rows[:3]:
        del row["schemaVersion"]
    data = samples.jsonl(rows)
    report = _validate(data, "sft")
    assert report.problems() == [] and report.schema_version_missing == 3
    staged = b"".join(datasets.with_schema_version(io.BytesIO(data), chunk_bytes=64))
    lines = staged.decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"schemaVersion": datasets.SCHEMA_VERSION, **r} for r in rows]
    assert lines[3:] == data.decode().splitlines()[3:]  # rows that had one pass byte for byte


def _json_values(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(
            [None, True, False, 0, -1, 2.5, 1e308, "", " ", "User:", "s3://a/b", "x" * 50, "user", "assistant"]
        )
    if roll < 0.75:
        return [_json_values(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [
        "text",
        "role",
        "content",
        "image",
        "format",
        "source",
        "s3Location",
        "uri",
        "toolUse",
        "toolUseId",
        "name",
        "type",
        "x",
    ]
    return {rng.choice(keys): _json_values(rng, depth + 1) for _ in range(rng.randrange(4))}


def _mutations(row, rng: random.Random):
    """``row`` with one value somewhere inside it replaced by a random JSON value."""
    row = json.loads(json.dumps(row))
    node = row
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return row
        key = rng.choice(keys)
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or rng.random() < 0.35:
            node[key] = _json_values(rng)
            return row
        node = child


@pytest.mark.parametrize("kind", ["sft", "rft", "gen_qa", "rft_eval"])
def test_any_json_value_in_any_field_gives_a_line_and_field_message(kind: str) -> None:
    rng = random.Random(12)
    bases = {
        "sft": [
            *samples.sft_rows(1),
            with_media({"image": IMAGE}),
            sft([text("q")], [REASONING, text("a")], toolConfig=TOOLS),
        ],
        "rft": [*samples.rft_rows(1), rft(user("q"), tools=[RFT_TOOL])],
        "rft_eval": samples.rft_rows(1),
        "gen_qa": [{"query": "q", "response": "a", "system": "s", "images": [{"data": "data:image/png;base64,AA"}]}],
    }[kind]
    fields = re.compile(r"^(the line is |[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*:)")
    reported = 0
    for model in ("nova-micro", "nova-lite", "nova-2-lite"):
        for _ in range(300):
            row = _mutations(rng.choice(bases), rng) if rng.random() < 0.9 else _json_values(rng)
            report = datasets.validate_stream(
                io.BytesIO(json.dumps(row).encode() + b"\n"), kind, rules=datasets.Rules(model=model)
            )
            for error in report.errors:
                assert error.line == 1 and fields.match(error.message), (row, error.message)
            reported += report.error_count
    assert reported > 300  # most mutations break a rule: the messages above were really checked


def test_the_first_errors_and_the_total_are_reported() -> None:
    data = samples.jsonl(samples.sft_rows(10)) + b"{not json\n" * 25
    report = datasets.validate_stream(io.BytesIO(data), "sft", max_errors=10)
    problems = report.problems()
    assert report.error_count == 25 and len(report.errors) == 10
    assert problems[0].startswith("line 11: not valid JSON")
    assert "... and 15 more invalid lines" in problems
    assert "25 of 35 lines are invalid" in problems


def test_too_few_rows_is_a_problem() -> None:
    report = _validate(samples.sft_rows(3), "sft")
    assert report.problems() == [f"3 valid rows; a sft dataset needs at least {datasets.MIN_ROWS['sft']}"]


def test_blank_lines_and_a_missing_final_newline_are_fine() -> None:
    data = samples.jsonl(samples.eval_rows(6)).replace(b"\n", b"\n\n", 2).rstrip(b"\n")
    report = _validate(data, "gen_qa")
    assert report.rows == 6 and report.error_count == 0 and report.blank_lines == 2


def test_the_stream_is_read_in_bounded_chunks() -> None:
    stream = CountingStream(samples.jsonl(samples.sft_rows(500)))
    report = datasets.validate_stream(stream, "sft", chunk_bytes=4096)
    assert report.rows == 500 and stream.largest == 4096


def test_an_over_long_line_is_reported_and_skipped_without_being_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "MAX_LINE_BYTES", 1000)
    lines = list(datasets.iter_lines(io.BytesIO(b"a\n" + b"x" * 5000 + b"\nb\n"), chunk_bytes=64, max_line_bytes=1000))
    assert lines == [(1, b"a"), (2, None), (3, b"b")]


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.integers(1, 50))
def test_iter_lines_splits_exactly_like_splitlines_whatever_the_chunk_size(lines: list[bytes], chunk: int) -> None:
    data = b"\n".join(lines)
    got = [line for _, line in datasets.iter_lines(io.BytesIO(data), chunk_bytes=chunk)]
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert got == expected


def test_the_grader_sample_is_drawn_from_the_whole_file() -> None:
    rows = [{**row, "id": f"q-{i}"} for i, row in enumerate(samples.rft_rows(1000))]
    sample: list[dict] = []
    datasets.validate_stream(io.BytesIO(samples.jsonl(rows)), "rft", sample=sample, sample_size=20)
    ids = [int(row["id"][2:]) for row in sample]
    assert len(ids) == 20 and max(ids) > 500


def test_report_as_dict_is_json_serializable() -> None:
    report = _validate([*samples.eval_rows(5), {"query": 1}], "gen_qa")
    data = report.as_dict()
    assert json.loads(json.dumps(data))["invalidLines"] == 1
