"""Small generated datasets in the documented formats (docs/contracts/datasets.md).

The task is the Stack Overflow question-quality case study: label a question
``HQ`` (high quality, no edits), ``LQ_EDIT`` (low quality, edited) or
``LQ_CLOSE`` (low quality, closed). The questions are synthetic and
deterministic: a dozen for the evaluation and, for training, six rewordings of
each (72 rows, at least one global batch of the SFT and RFT recipes; 21 rewordings,
252 rows, on the Bedrock road) that never repeat an evaluation prompt. Enough to exercise the pre-flight checks, the
simulated jobs and the grader. :func:`dataset_files` and :func:`in_bucket` serve a user's own run input
instead: each dataset URI from the file of the same name in a folder, moved into the simulated data bucket
(``novactl start`` moves them into the stack's data bucket the same way).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path, PurePosixPath
from typing import Any

LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")
SYSTEM = "You review Stack Overflow questions. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."

_QUESTIONS = [
    (
        "How do I merge two dictionaries in a single expression in Python 3.9?",
        "I have dicts a and b and want a new dict with b's values winning. I tried a.update(b) but it mutates a.",
        "HQ",
    ),
    ("pls help code not working", "my code dont work i get error. what is wrong??", "LQ_CLOSE"),
    (
        "Why does my React useEffect run twice in development?",
        "With React 18 StrictMode my effect fires twice on mount. Minimal example attached; is this expected?",
        "HQ",
    ),
    ("java error", "Exception in thread main java.lang.NullPointerException how fix", "LQ_EDIT"),
    ("Best programming language?", "Which language is the best one to learn in 2026? Opinions welcome.", "LQ_CLOSE"),
    (
        "How to read a CSV with pandas when the delimiter is a semicolon?",
        "pd.read_csv puts every column in one field for my file, which uses ';' as separator.",
        "HQ",
    ),
    ("sql query", "select * from table where name = 'x' it returns nothing but there is x", "LQ_EDIT"),
    ("Can someone write my homework for me", "Write a program that sorts numbers. Due tomorrow.", "LQ_CLOSE"),
    (
        "Difference between git rebase and git merge for a feature branch?",
        "When should I rebase onto main instead of merging main into my branch? I care about a linear history.",
        "HQ",
    ),
    ("css not center", "<div> not centering i used center tag help", "LQ_EDIT"),
    (
        "How to cancel an asyncio task cleanly and await its cleanup?",
        "task.cancel() returns but my finally block's awaits never complete. Python 3.11, code below.",
        "HQ",
    ),
    ("website down?", "is stackoverflow down for everyone or just me", "LQ_CLOSE"),
]


# How the training rows reword a question's body: none of them is the evaluation prompt.
_REWORDINGS = (
    " Thanks in advance.",
    " Any help appreciated.",
    " Edit: fixed the formatting.",
    " Update: still stuck after an hour.",
    " Reposted from the chat room.",
    " First question here, be kind.",
)


def _prompt(title: str, body: str) -> str:
    return f"Title: {title}\nBody: {body}\nLabel:"


# Rewordings per question for the Bedrock road: Bedrock's Nova customization jobs take at least 200 SFT and 100
# RFT records (the limits preflight checks on that road), so each question gets every rewording and every pair
# of them (6 + 15 = 21 variants, 252 rows).
BEDROCK_VARIANTS = 21


def _rewordings(variants: int) -> list[str]:
    """The first ``variants`` rewordings: each suffix alone, then each pair of suffixes."""
    pairs = [a + b for i, a in enumerate(_REWORDINGS) for b in _REWORDINGS[i + 1 :]]
    return [*_REWORDINGS, *pairs][:variants]


def _training_questions(variants: int = len(_REWORDINGS)) -> list[tuple[str, str, str]]:
    return [(title, body + extra, label) for extra in _rewordings(variants) for title, body, label in _QUESTIONS]


def sft_rows(variants: int = len(_REWORDINGS)) -> list[dict]:
    """Converse format: system + alternating user/assistant turns ending with the assistant."""
    return [
        {
            "system": [{"text": SYSTEM}],
            "messages": [
                {"role": "user", "content": [{"text": _prompt(title, body)}]},
                {"role": "assistant", "content": [{"text": label}]},
            ],
        }
        for title, body, label in _training_questions(variants)
    ]


def rft_rows(questions: list[tuple[str, str, str]] | None = None, variants: int = len(_REWORDINGS)) -> list[dict]:
    """RFT format: messages without the final assistant turn, a reference answer and metadata."""
    return [
        {
            "id": f"so-{index:03d}",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _prompt(title, body)}],
            "reference_answer": label,
            "labels": list(LABELS),
            "source": "stackoverflow-question-quality",
        }
        for index, (title, body, label) in enumerate(_training_questions(variants) if questions is None else questions)
    ]


def eval_rows() -> list[dict]:
    """gen_qa format: query, expected response, system prompt."""
    return [{"query": _prompt(title, body), "response": label, "system": SYSTEM} for title, body, label in _QUESTIONS]


def jsonl(rows: list[dict], *, corrupt_row: int | None = None) -> bytes:
    """JSON Lines; ``corrupt_row`` replaces that row with a truncated, unparsable line."""
    lines = [json.dumps(row) for row in rows]
    if corrupt_row is not None:
        lines[corrupt_row] = lines[corrupt_row][: len(lines[corrupt_row]) // 2]
    return ("\n".join(lines) + "\n").encode()


def all_datasets(*, corrupt: bool = False, bedrock: bool = False) -> dict[str, bytes]:
    """``sft``/``rft``/``eval``/``rft_eval`` -> file content; ``corrupt`` breaks one SFT row (preflight rejects it);
    ``bedrock``: training sets of :data:`BEDROCK_VARIANTS` rewordings a question, as many rows as Bedrock needs."""
    variants = BEDROCK_VARIANTS if bedrock else len(_REWORDINGS)
    return {
        "sft": jsonl(sft_rows(variants), corrupt_row=3 if corrupt else None),
        "rft": jsonl(rft_rows(variants=variants)),
        "eval": jsonl(eval_rows()),
        "rft_eval": jsonl(rft_rows(_QUESTIONS)),  # the evaluation questions in the RFT format
    }


DATASET_FIELDS = ("sft", "rft", "eval")


def dataset_files(run_input: Any, folder: Path) -> tuple[dict[str, Path], list[str]]:
    """A user's datasets for a rehearsal: the key of each dataset URI of ``run_input`` -> the file of the same
    name in ``folder``, and the problems (a URI that is not ``s3://bucket/key``, a file that is not there)."""
    files: dict[str, Path] = {}
    problems: list[str] = []
    given = run_input.get("datasets") if isinstance(run_input, dict) else None
    if not isinstance(given, dict):
        return files, problems  # the run input's own validation names the missing datasets
    for name in DATASET_FIELDS:
        uri = given.get(name)
        if not isinstance(uri, str):
            continue
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
            problems.append(f"datasets.{name}: {uri!r} is not an s3://<bucket>/<key> URI of one file")
            continue
        path = folder / PurePosixPath(key).name
        if not path.is_file():
            problems.append(f"datasets.{name}: {uri} is served from {path}, which does not exist")
            continue
        files[key] = path
    return files, problems


def in_bucket(run_input: dict, bucket: str) -> dict:
    """``run_input`` with every dataset URI moved to ``bucket`` (same key)."""
    moved = copy.deepcopy(run_input)
    for name, uri in (moved.get("datasets") or {}).items():
        if isinstance(uri, str) and uri.startswith("s3://") and "/" in uri[5:]:
            moved["datasets"][name] = f"s3://{bucket}/{uri[5:].partition('/')[2]}"
    return moved
