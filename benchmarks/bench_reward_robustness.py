"""Reward Lambda robustness: random malformed batches through the handler, and degenerate long rollouts.

Run from the repository root:

    python benchmarks/bench_reward_robustness.py

1. At least 30,000 random malformed batches (:func:`offline.malformed.malformed_event`, fixed
   seeds: any JSON value in any field of a well-formed batch of 8 items, sometimes a whole event
   that is not a list) go through ``lambda_handler`` of every grader (each preset and each custom
   module), shared equally. Reported per grader: batches, exceptions (the target is 0) and time.
2. Degenerate rollouts of 24 KB (one marker or fragment repeated: ``ANSWER: 1 ``, ``#### 1 ``,
   ``\\boxed{``, an unclosed JSON list, a label repeated, ...) graded one at a time by every grader
   against references of every kind (so each grader's whole path runs), best of 5; the slowest must
   stay under 10 ms. Grading is linear in the input (the unit tests count what is parsed); this
   bounds the constant.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_reward import verdict  # noqa: E402 - needs the repository root on sys.path
from lambdas.reward.presets import list_graders  # noqa: E402
from offline.lambda_context import FakeLambdaContext  # noqa: E402
from offline.malformed import malformed_event  # noqa: E402

TOTAL_BATCHES = 30_000
DEGENERATE_CHARS = 24_000
DEGENERATE_TARGET_MS = 10.0
DEGENERATE_PIECES = [
    "ANSWER: 1 ",
    "#### 1 ",
    "\\boxed{",
    "\\boxed{1}",
    "answer: ",
    "Answer: yes ",
    "1,",
    "(1) ",
    "HQ ",
    "not HQ ",
    "Label: LQ_EDIT\n",
    '{"tool_calls": [',
    '{"a":',
    "[",
    "```json\n{",
    '{"name": "search_case_law", "arguments": {}}, ',
    "a1",
    "1.",
    "-",
    "$1 ",
    "1%",
]
REFERENCES = ["1", "yes", "HQ", "Paris", {"tool_calls": [{"name": "search_case_law", "arguments": {"query": "x"}}]}]
CONTEXT = FakeLambdaContext("SageMakerRewardRobustness", aws_request_id="bench")


def _load_handler(name: str):
    os.environ.pop("GRADER_SPEC", None)
    os.environ["GRADER_PRESET"] = name
    sys.modules.pop("lambdas.reward.handler", None)
    return importlib.import_module("lambdas.reward.handler")


def malformed_batches(names: list[str]) -> list[dict]:
    rows = []
    per_grader = -(-TOTAL_BATCHES // len(names))
    for name in names:
        handler = _load_handler(name)
        rng = random.Random(f"bench-robustness-{name}")
        failures: Counter[str] = Counter()
        items = 0
        started = time.perf_counter()
        for _ in range(per_grader):
            event = malformed_event(rng)
            items += len(event) if isinstance(event, list) else 1
            try:
                json.dumps(handler.lambda_handler(event, CONTEXT), allow_nan=False)
            except Exception as exc:  # noqa: BLE001 - counting them is the point
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                failures[f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"] += 1
        elapsed = time.perf_counter() - started
        rows.append({"grader": name, "batches": per_grader, "items": items, "s": elapsed, "failures": failures})
    return rows


def degenerate_rollouts(names: list[str]) -> list[dict]:
    from lambdas.reward.config import reward_function

    rows = []
    for name in names:
        reward = reward_function(preset=name)
        slowest = (0.0, "")
        for piece in DEGENERATE_PIECES:
            text = (piece * (DEGENERATE_CHARS // len(piece) + 1))[:DEGENERATE_CHARS]
            for reference in REFERENCES:  # one each grader can read, so its whole grading path runs
                item = {
                    "id": "degenerate",
                    "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}],
                    "reference_answer": reference,
                }
                best = float("inf")
                for _ in range(5):
                    gc.collect()
                    gc.disable()
                    try:
                        started = time.perf_counter()
                        reward.grade_batch([item])
                        best = min(best, time.perf_counter() - started)
                    finally:
                        gc.enable()
                slowest = max(slowest, (best * 1000, piece))
        rows.append({"grader": name, "ms": slowest[0], "piece": slowest[1]})
    return rows


def main() -> int:
    names = list_graders()
    real_stdout = sys.stdout
    # The handler's logs and EMF metrics are written but not shown.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        batches = malformed_batches(names)
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
    failed = []
    total = sum(row["batches"] for row in batches)
    exceptions = sum(sum(row["failures"].values()) for row in batches)
    seconds = sum(row["s"] for row in batches)
    print(f"random malformed batches through lambda_handler (Python {sys.version.split()[0]})")
    print(f"{'grader':<16}{'batches':>9}{'items':>9}{'exceptions':>12}{'seconds':>9}{'batches/s':>11}")
    for row in batches:
        count = sum(row["failures"].values())
        print(
            f"{row['grader']:<16}{row['batches']:>9,}{row['items']:>9,}{count:>12}{row['s']:>9.1f}"
            f"{row['batches'] / row['s']:>11,.0f}"
        )
        for where, times in row["failures"].most_common(3):
            print(f"    {times} x {where}")
    print(
        f"{'total':<16}{total:>9,}{sum(r['items'] for r in batches):>9,}{exceptions:>12}{seconds:>9.1f}"
        f"{total / seconds:>11,.0f}  target: 0 exceptions  {'PASS' if exceptions == 0 else 'FAIL'}"
    )
    if exceptions:
        failed.append(f"{exceptions} exceptions in {total} malformed batches")

    print(f"\ndegenerate {DEGENERATE_CHARS // 1000} KB rollouts, one item, best of 5: the slowest piece per grader")
    for row in degenerate_rollouts(names):
        ok = row["ms"] < DEGENERATE_TARGET_MS
        print(
            f"{row['grader']:<16}{row['ms']:>8.2f} ms  ({row['piece']!r} repeated)  "
            f"target < {DEGENERATE_TARGET_MS:g} ms  {'PASS' if ok else 'FAIL'}"
        )
        if not ok:
            failed.append(f"{row['grader']}: {row['ms']:.1f} ms on a degenerate rollout")
    return verdict(failed)


if __name__ == "__main__":
    sys.exit(main())
