"""Reward Lambda benchmark: grading cost per 512-rollout batch, and cold-start import time.

Run from the repository root:

    python benchmarks/bench_reward.py

For each shipped preset (classification as ``label``, numeric, finqa, tool-calling as
``tool_call``, legal-tool-calling as ``legal``) plus the json_schema and text_similarity
graders, a deterministic batch of 512 realistic request items is built (Stack Overflow
classification, GSM8K/FinQA answers, legal-assistant tool calls, legal query analysis in its
native shape), and the same rollouts with short prompts (a one-line system prompt and question,
where the handler's cost per item weighs most). Measured, best of several runs: ``json.loads`` of the batch's JSON text
(what the Lambda runtime does before calling the handler) and the full handler
path (Powertools decorators, event coercion, item parsing, grading, summary,
logs and EMF metrics), alternately, with the garbage collector paused as ``timeit`` does. The ratio handler /
loads must stay within the target on both batches (3 for label, numeric and finqa; 6 for
tool_call and legal, whose graders parse the answer's JSON again, which alone costs about what
``json.loads`` of the rollout does).
Cold start is the time to import
``lambdas.reward.handler`` (Powertools included) in a fresh interpreter, median of
five, and must stay under 250 ms. Exits 1 when a target is missed.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from offline.lambda_context import FakeLambdaContext  # noqa: E402 - needs the repository root on sys.path

BATCH = 512
REPEATS = 40
COLD_START_RUNS = 5
COLD_START_TARGET_MS = 250.0
TARGETS = {"label": 3.0, "numeric": 3.0, "finqa": 3.0, "tool_call": 6.0, "legal": 6.0}

_WORDS = [
    "python",
    "list",
    "index",
    "error",
    "function",
    "return",
    "value",
    "loop",
    "array",
    "string",
    "dictionary",
    "class",
    "object",
    "method",
    "variable",
    "null",
    "pointer",
    "exception",
    "compile",
    "runtime",
    "stack",
    "trace",
    "database",
    "query",
    "table",
    "column",
    "join",
    "select",
    "insert",
    "update",
    "server",
    "client",
    "request",
    "response",
    "thread",
    "async",
    "await",
]


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _code(rng: random.Random, lines: int) -> str:
    return "\n".join(f"    {rng.choice(_WORDS)}_{i} = {rng.choice(_WORDS)}({rng.randint(0, 99)})" for i in range(lines))


# ---------------------------------------------------------------- batches


def _rollout(item_id: str, system: str, question: str, answer: str, reference: object, **extra: object) -> dict:
    """One request item: a system prompt, a question, the rollout's answer and the reference."""
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return {"id": item_id, "messages": messages, **extra, "reference_answer": reference}


def label_batch(rng: random.Random) -> list[dict]:
    labels = ["HQ", "LQ_EDIT", "LQ_CLOSE"]
    system = (
        "You are a Stack Overflow moderator. Classify the question's quality as exactly one of "
        "HQ (high quality), LQ_EDIT (low quality, fixable by editing) or LQ_CLOSE (low quality, "
        "should be closed). Answer with the label."
    )
    shapes = [
        "{label}",
        "{label}.",
        "The answer is **{label}**.",
        "Label: {label}\nReason: " + "{reason}",
        "I would classify this question as `{label}` because {reason}",
    ]
    items = []
    for index in range(BATCH):
        reference = rng.choice(labels)
        answer = rng.choice(labels) if rng.random() < 0.3 else reference
        body = (
            f"Title: {_prose(rng, 10)}\n\n{_prose(rng, rng.randint(60, 160))}\n\n"
            f"```python\n{_code(rng, rng.randint(2, 10))}\n```"
        )
        text = rng.choice(shapes).format(label=answer, reason=_prose(rng, rng.randint(8, 25)))
        items.append(
            {
                "id": f"so-{index:05d}",
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": body},
                    {"role": "assistant", "content": text},
                ],
                "reference_answer": reference,
                "metadata": {"source": "stackoverflow-quality", "split": "train"},
            }
        )
    return items


def numeric_batch(rng: random.Random) -> list[dict]:
    items = []
    for index in range(BATCH):
        if index % 2:  # GSM8K: a word problem, a chain of thought, "#### N"
            answer = rng.randint(2, 500)
            question = f"{_prose(rng, rng.randint(40, 70))}. How many {rng.choice(_WORDS)}s are there in total?"
            steps = "\n".join(
                f"{_prose(rng, rng.randint(10, 16))}: {rng.randint(1, 99)} * {rng.randint(1, 9)} = "
                f"<<{rng.randint(1, 99)}*{rng.randint(1, 9)}={rng.randint(1, 999)}>>{rng.randint(1, 999)}"
                for _ in range(rng.randint(4, 8))
            )
            got = answer if rng.random() < 0.6 else answer + rng.randint(1, 9)
            text = f"{steps}\n#### {got}"
            reference: object = {"final_answer": str(answer)}
        else:  # FinQA: report text around a table, a percentage answer
            value = round(rng.uniform(-40, 90), 1)
            table = "\n".join(
                f"| {_prose(rng, 3)} | ${rng.randint(100, 9999):,} | ${rng.randint(100, 9999):,} |"
                for _ in range(rng.randint(8, 14))
            )
            question = (
                f"{_prose(rng, rng.randint(100, 200))}\n\n| item | 2019 | 2018 |\n|---|---|---|\n{table}\n\n"
                f"{_prose(rng, rng.randint(50, 100))}\n\nWhat was the percentage change in {_prose(rng, 3)}?"
            )
            stated = value if rng.random() < 0.6 else value + rng.choice([-5.0, 0.3, 12.0])
            text = (
                f"{_prose(rng, rng.randint(40, 80))}: ({rng.randint(100, 999)} - {rng.randint(100, 999)}) / "
                f"{rng.randint(100, 999)} = {round(value / 100, 4)}.\nANSWER: {stated}%"
            )
            reference = f"{value}%" if rng.random() < 0.5 else round(value / 100, 4)
        items.append(
            {
                "id": f"num-{index:05d}",
                "messages": [
                    {
                        "role": "system",
                        "content": "Solve the problem step by step. End with 'ANSWER: <number>' or '#### <number>'.",
                    },
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": text},
                ],
                "reference_answer": reference,
            }
        )
    return items


LEGAL_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_case_law",
            "description": "Search court decisions by query, jurisdiction and date range.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Free-text search query"},
                    "jurisdiction": {"type": "string", "enum": ["federal", "state", "CA", "NY", "TX"]},
                    "year_from": {"type": "integer"},
                    "limit": {"type": "integer", "default": 5},
                },
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_statute",
            "description": "Fetch the text of a statute by code and section.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "section": {"type": "string"}},
                "required": ["code", "section"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "summarize_document",
            "description": "Summarize an uploaded legal document.",
            "parameters": {
                "type": "object",
                "properties": {"document_id": {"type": "string"}, "max_words": {"type": "integer"}},
            },
        },
    },
]


def tool_call_batch(rng: random.Random) -> list[dict]:
    items = []
    for index in range(BATCH):
        calls = [
            {
                "name": "search_case_law",
                "arguments": {
                    "query": _prose(rng, 4),
                    "jurisdiction": rng.choice(["CA", "NY", "federal"]),
                    "limit": rng.randint(3, 10),
                },
            }
        ]
        if rng.random() < 0.5:
            calls.append(
                {"name": "get_statute", "arguments": {"code": "Penal Code", "section": str(rng.randint(100, 999))}}
            )
        got = json.loads(json.dumps(calls))
        roll = rng.random()
        if roll < 0.2:
            got[0]["arguments"]["limit"] = str(got[0]["arguments"]["limit"])  # "5" vs 5
        elif roll < 0.35:
            got.reverse()
        elif roll < 0.45:
            got = got[:1] + [{"name": "summarize_document", "arguments": {"document_id": "doc-1"}}]
        if rng.random() < 0.3:  # OpenAI style: arguments as a JSON string
            got = [
                {"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                for c in got
            ]
        text = json.dumps({"tool_calls": got})
        if rng.random() < 0.3:
            text = f"```json\n{text}\n```"
        system = "You are a legal research assistant. Use the tools to answer; reply with JSON tool calls."
        question = f"{_prose(rng, 30)}? Look for relevant cases and the statute."
        items.append(_rollout(f"legal-{index:05d}", system, question, text, {"tool_calls": calls}, tools=LEGAL_TOOLS))
    return items


LEGAL_TOOLS_NATIVE = ["statute_retrieval", "case_law_search", "compliance_checker", "citation_validator"]
LEGAL_TYPES = ["regulatory_compliance_analysis", "judicial_interpretation", "citation_verification"]
SOLUTION_TAGS = ("<|begin_of_solution|>", "<|end_of_solution|>")


def legal_batch(rng: random.Random) -> list[dict]:
    """Legal query analysis in its native shape (``{"Type", "Information needed", "Tools": [...]}``).

    Answers are flat or wrapped in ``{"Query analysis": ...}``, a third of them after reasoning
    between solution tags, some with a tool missing, renamed or reordered, or a parameter changed.
    """
    items = []
    for index in range(BATCH):
        tools = [
            {
                "Tool": rng.choice(LEGAL_TOOLS_NATIVE),
                "Parameters": {"query": _prose(rng, 4), "regulation": f"Rule {rng.randint(100, 999)}A"},
                "Reasoning": _prose(rng, rng.randint(6, 14)),
            }
            for _ in range(rng.randint(1, 3))
        ]
        reference = {"Type": rng.choice(LEGAL_TYPES), "Information needed": _prose(rng, 10), "Tools": tools}
        answer = json.loads(json.dumps(reference))
        roll = rng.random()
        if roll < 0.15:
            answer["Tools"] = answer["Tools"][:-1]
        elif roll < 0.3:
            answer["Tools"][0]["Tool"] = rng.choice(LEGAL_TOOLS_NATIVE)
        elif roll < 0.45:
            answer["Tools"].reverse()
        elif roll < 0.6:
            answer["Tools"][0]["Parameters"]["query"] = _prose(rng, 4)
        if rng.random() < 0.5:
            answer = {"Query analysis": answer}
        text = json.dumps(answer)
        if rng.random() < 0.3:
            text = f"{_prose(rng, 40)}{SOLUTION_TAGS[0]}```json\n{text}\n```{SOLUTION_TAGS[1]}"
        system = "Analyse the legal query: its type, the information needed, the tools."
        question = f"{_prose(rng, rng.randint(30, 80))}?"
        items.append(_rollout(f"legal-native-{index:05d}", system, question, text, reference))
    return items


def finqa_batch(rng: random.Random) -> list[dict]:
    """The numeric batch with a third of the answers after reasoning between solution tags."""
    items = numeric_batch(rng)
    for entry in items:
        if rng.random() < 0.3:
            answer = entry["messages"][-1]
            answer["content"] = f"{_prose(rng, 30)}{SOLUTION_TAGS[0]}{answer['content']}{SOLUTION_TAGS[1]}"
    return items


def json_schema_batch(rng: random.Random) -> list[dict]:
    items = []
    for index in range(BATCH):
        record = {"name": _prose(rng, 2), "age": rng.randint(1, 99), "tags": [_prose(rng, 1) for _ in range(3)]}
        if rng.random() < 0.3:
            record["age"] = str(record["age"])
        items.append(
            {
                "id": f"js-{index:05d}",
                "messages": [
                    {"role": "user", "content": _prose(rng, 60)},
                    {"role": "assistant", "content": json.dumps(record)},
                ],
            }
        )
    return items


def text_batch(rng: random.Random) -> list[dict]:
    items = []
    for index in range(BATCH):
        reference = _prose(rng, rng.randint(10, 40))
        answer = reference if rng.random() < 0.3 else _prose(rng, rng.randint(10, 60))
        items.append(
            {
                "id": f"txt-{index:05d}",
                "messages": [{"role": "user", "content": _prose(rng, 80)}, {"role": "assistant", "content": answer}],
                "reference_answer": reference,
            }
        )
    return items


JSON_SCHEMA_SPEC = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
}


def short_prompts(batch: list[dict]) -> list[dict]:
    """The same rollouts and references with a short system prompt and a short question.

    The handler's fixed cost per item weighs most against ``json.loads`` when there is little
    text to load: a classification prompt of one line is the common worst case.
    """
    short = []
    for index, entry in enumerate(batch):
        messages = [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"Question {index}: what is it?"},
            entry["messages"][-1],
        ]
        short.append({**entry, "messages": messages})
    return short


CASES = [
    # (grader type, environment, batch builder)
    ("label", {"GRADER_PRESET": "classification"}, label_batch),
    ("numeric", {"GRADER_PRESET": "numeric"}, numeric_batch),
    ("finqa", {"GRADER_PRESET": "finqa"}, finqa_batch),
    ("tool_call", {"GRADER_PRESET": "tool-calling"}, tool_call_batch),
    ("legal", {"GRADER_PRESET": "legal-tool-calling"}, legal_batch),
    ("json_schema", {"GRADER_SPEC": json.dumps(JSON_SCHEMA_SPEC)}, json_schema_batch),
    ("text_similarity", {"GRADER_SPEC": json.dumps({"type": "text_similarity", "metric": "rouge_l"})}, text_batch),
]


# ---------------------------------------------------------------- measuring


CONTEXT = FakeLambdaContext("SageMakerRewardBench", aws_request_id="bench")


def _best_interleaved(first, second, repeats: int = REPEATS) -> tuple[float, float]:
    """Best times of two functions run alternately, so both see the same machine load.

    Like ``timeit``, the garbage collector is paused while timing (and run between
    runs): otherwise whichever function happens to trigger a full collection of
    everything the benchmark holds pays for it.
    """
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for slot, function in enumerate((first, second)):
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                function()
                elapsed = time.perf_counter() - started
            finally:
                gc.enable()
            best[slot] = min(best[slot], elapsed)
    return best[0], best[1]


def _load_handler(environment: dict[str, str]):
    for key in ("GRADER_SPEC", "GRADER_PRESET"):
        os.environ.pop(key, None)
    os.environ.update(environment)
    module = sys.modules.get("lambdas.reward.handler")
    if module is None:
        return importlib.import_module("lambdas.reward.handler")
    return importlib.reload(module)


def _measure(handler, batch: list[dict]) -> dict:
    text = json.dumps(batch)
    event = json.loads(text)
    results = handler.lambda_handler(event, CONTEXT)
    assert len(results) == BATCH and all(r["id"] == i["id"] for r, i in zip(results, event, strict=True))
    loads_s, handler_s = _best_interleaved(
        functools.partial(json.loads, text), functools.partial(handler.lambda_handler, event, CONTEXT)
    )
    return {
        "kib": len(text) / 1024,
        "loads_ms": loads_s * 1000,
        "handler_ms": handler_s * 1000,
        "ratio": handler_s / loads_s,
        "rollouts_per_s": BATCH / handler_s,
        "mean_score": sum(r["aggregate_reward_score"] for r in results) / BATCH,
    }


def measure_batches() -> list[dict]:
    """Per grader: the benchmark's batch and the same rollouts with short prompts, measured alike."""
    rows = []
    real_stdout = sys.stdout
    # The handler's logs and EMF metrics are written (their cost is measured) but not shown.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        for kind, environment, builder in CASES:
            batch = builder(random.Random(7))
            handler = _load_handler(environment)
            rows.append(
                {
                    "kind": kind,
                    **_measure(handler, batch),
                    "short": _measure(handler, short_prompts(batch)),
                    "target": TARGETS.get(kind),
                }
            )
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
    return rows


def measure_cold_start() -> dict:
    code = (
        "import time; started = time.perf_counter(); import lambdas.reward.handler; "
        "print((time.perf_counter() - started) * 1000)"
    )
    environment = {**os.environ, "GRADER_PRESET": "tool-calling", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    environment.pop("GRADER_SPEC", None)
    timings = []
    heavy = []
    for run in range(COLD_START_RUNS):
        command = [sys.executable, "-c", code] if run else [sys.executable, "-X", "importtime", "-c", code]
        done = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=True)
        timings.append(float(done.stdout.strip().splitlines()[-1]))
        if not run:
            for line in done.stderr.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[1].strip().isdigit():
                    heavy.append((int(parts[1]), parts[2].strip()))
    heavy.sort(reverse=True)
    # Powertools' user-agent hook imports the bare botocore package (cheap); clients and boto3 must not load.
    bootstrap = [name for _, name in heavy if name == "boto3" or name.startswith(("boto3.", "botocore."))]
    return {
        "median_ms": statistics.median(timings[1:]),
        "runs_ms": timings[1:],
        "top": heavy[:6],
        "boto": bootstrap[:3],
    }


def main() -> int:
    failed = []
    rows = measure_batches()
    print(f"reward graders, {BATCH}-rollout batches, best of {REPEATS} (Python {sys.version.split()[0]})")
    print("ratio = handler time / json.loads of the same batch; 'short' = the same rollouts with short prompts")
    print(
        f"{'grader':<16}{'KiB':>6}{'loads ms':>10}{'handler ms':>12}{'ratio':>7}{'rollouts/s':>12}"
        f"  |{'short KiB':>10}{'loads ms':>10}{'handler ms':>12}{'ratio':>7}{'target':>8}  result"
    )
    for row in rows:
        target, short = row["target"], row["short"]
        worst = max(row["ratio"], short["ratio"])
        status = "info" if target is None else ("PASS" if worst <= target else "FAIL")
        if status == "FAIL":
            failed.append(f"{row['kind']} ratio {row['ratio']:.2f} / short {short['ratio']:.2f} > {target}")
        print(
            f"{row['kind']:<16}{row['kib']:>6.0f}{row['loads_ms']:>10.2f}{row['handler_ms']:>12.2f}{row['ratio']:>7.2f}"
            f"{row['rollouts_per_s']:>12,.0f}  |{short['kib']:>10.0f}{short['loads_ms']:>10.2f}"
            f"{short['handler_ms']:>12.2f}{short['ratio']:>7.2f}"
            f"{('<= ' + format(target, 'g')) if target else '-':>8}  {status}"
        )
    print(numeric_scan_share(next(row for row in rows if row["kind"] == "numeric")))
    cold = measure_cold_start()
    cold_ok = cold["median_ms"] < COLD_START_TARGET_MS and not cold["boto"]
    print(
        f"cold start: import lambdas.reward.handler median {cold['median_ms']:.0f} ms "
        f"(runs {', '.join(f'{t:.0f}' for t in cold['runs_ms'])}; target < {COLD_START_TARGET_MS:.0f} ms)  "
        f"{'PASS' if cold_ok else 'FAIL'}"
    )
    print("  heaviest imports (cumulative us): " + ", ".join(f"{name} {us:,}" for us, name in cold["top"]))
    if cold["boto"]:
        failed.append(f"boto3/botocore imported at cold start: {cold['boto']}")
    if cold["median_ms"] >= COLD_START_TARGET_MS:
        failed.append(f"cold start {cold['median_ms']:.0f} ms >= {COLD_START_TARGET_MS:.0f} ms")
    return verdict(failed)


def numeric_scan_share(row: dict) -> str:
    """Where a short-prompt numeric rollout's time goes, against the least any marker search must do.

    Finding every marked answer (so that two different ones are a hedge) needs the whole answer scanned
    for ``####`` and for ``answer`` in its two cases: three substring searches, timed here alone.
    """
    texts = [entry["messages"][-1]["content"] for entry in short_prompts(numeric_batch(random.Random(7)))]

    def scans() -> None:
        for text in texts:
            text.find("####")
            text.find("NSWER")
            text.find("nswer")

    scan_s, _ = _best_interleaved(scans, lambda: None)
    per_rollout = 1e3 / BATCH  # ms per batch -> us per rollout
    return (
        f"numeric, short prompts, per rollout: json.loads {row['short']['loads_ms'] * per_rollout:.2f} us, "
        f"handler {row['short']['handler_ms'] * per_rollout:.2f} us, of which the three substring scans of "
        f"the answer that finding every marker needs {scan_s * 1e6 / BATCH:.2f} us"
    )


def verdict(failed: list[str]) -> int:
    """Print the benchmark's verdict; its exit status (1 when any target was missed)."""
    if failed:
        print("targets missed: " + "; ".join(failed), file=sys.stderr)
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
