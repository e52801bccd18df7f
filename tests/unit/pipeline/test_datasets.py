"""Streaming dataset validation: formats, line numbers, bounded memory, sampling."""

from __future__ import annotations

import io
import json

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
    assert report.problems() == [] and report.rows == 12


@pytest.mark.parametrize(
    ("kind", "row", "fragment"),
    [
        ("sft", {"messages": []}, "non-empty list"),
        ("sft", {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}, "expected 'user'"),
        ("sft", {"messages": [{"role": "user", "content": [{"text": "q"}]}]}, "last message must be the assistant"),
        (
            "sft",
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"text": "a"}]}]},
            "list of content blocks",
        ),
        ("sft", {"system": "be nice", "messages": samples.sft_rows(1)[0]["messages"]}, "'system' must be a list"),
        (
            "sft",
            {
                "messages": [
                    {"role": "user", "content": [{"audio": "x"}]},
                    {"role": "assistant", "content": [{"text": "a"}]},
                ]
            },
            "unknown block type 'audio'",
        ),
        ("rft", {"messages": [{"role": "user", "content": "q"}]}, "missing reference_answer"),
        (
            "rft",
            {
                "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                "reference_answer": "a",
            },
            "end before the turn the model produces",
        ),
        ("rft", {"messages": [{"role": "system", "content": "s"}], "reference_answer": "a"}, "no user message"),
        ("rft", {"messages": [{"role": "robot", "content": "q"}], "reference_answer": "a"}, "not one of"),
        ("gen_qa", {"query": "", "response": "a"}, "'query' must be a non-empty string"),
        ("gen_qa", {"query": "q", "response": 3}, "'response' must be a string"),
        ("gen_qa", [1, 2], "not a JSON object"),
    ],
)
def test_invalid_rows_are_reported_with_their_line_number(kind: str, row, fragment: str) -> None:
    rows = [*samples.rft_rows(8), row] if kind == "rft" else None
    if kind == "sft":
        rows = [*samples.sft_rows(8), row]
    if kind == "gen_qa":
        rows = [*samples.eval_rows(8), row]
    report = _validate(rows, kind)
    assert report.error_count == 1
    assert report.errors[0].line == 9 and fragment in report.errors[0].message, report.errors


def test_reference_answer_under_metadata_is_accepted() -> None:
    row = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
        "metadata": {"reference_answer": 3},
    }
    assert _validate([row] * 8, "rft").problems() == []


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
