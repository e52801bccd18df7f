"""Reward handler cost counted in CPU instructions (Valgrind's callgrind), not timed.

Run from the repository root (needs ``valgrind``; about half a minute per batch):

    python benchmarks/count_reward_instructions.py                  # label, numeric, finqa, legal
    python benchmarks/count_reward_instructions.py legal tool_call  # chosen graders

``benchmarks/bench_reward.py`` times the handler against ``json.loads`` of the batch; on a machine
shared with other work those timings move by up to 2 x between runs. An instruction count does not
move: the same batches (``bench_reward``'s, full and short-prompt) are run under callgrind, once
with the measured call repeated twice and once without it, and the difference is what one call
costs. Printed per grader and batch: instructions of ``json.loads`` of the batch, of one handler
call, and their ratio. Python runs fewer instructions per cycle than ``json.loads``'s C code, so
the time ratio is higher than this one (about 1.3-1.5 x for label, numeric and finqa, 1.2-1.3 x for legal,
measured on a quiet machine): it is for comparing two versions of the code, and the targets stay
those of ``bench_reward``. Informational: always exits 0 when valgrind ran.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KINDS = ("label", "numeric", "finqa", "legal")
REPEATS = 2


def _child(kind: str, short: bool, measured: str, repeats: int) -> None:
    """Inside valgrind: build the batch, warm the handler up, then run ``measured`` ``repeats`` times."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import bench_reward as bench

    _, environment, builder = next(case for case in bench.CASES if case[0] == kind)
    batch = builder(random.Random(7))
    if short:
        batch = bench.short_prompts(batch)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the handler's logs are not the measure
    handler = bench._load_handler(environment)
    text = json.dumps(batch)
    event = json.loads(text)
    for _ in range(2):
        handler.lambda_handler(event, bench.CONTEXT)
    import gc

    gc.collect()
    gc.disable()
    for _ in range(repeats):
        if measured == "loads":
            json.loads(text)
        else:
            handler.lambda_handler(event, bench.CONTEXT)


def _instructions(kind: str, short: bool, measured: str, repeats: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        kind,
        "short" if short else "full",
        measured,
        str(repeats),
    ]
    # Same hash seed in every run, and no bytecode written: a run that compiled and saved a changed
    # module would count that work, and the difference between the two runs would not be one call.
    environment = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {done.stderr[-300:]}")
    return int(found.group(1))


def per_call(kind: str, short: bool, measured: str) -> float:
    """Instructions of one call of ``measured`` ("loads" or "handler"), by difference of two runs."""
    base = _instructions(kind, short, measured, 0)
    return (_instructions(kind, short, measured, REPEATS) - base) / REPEATS


def main(kinds: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing counted", file=sys.stderr)
        return 1
    print(f"instructions per call (callgrind), 512-rollout batches (Python {sys.version.split()[0]})")
    print(f"{'grader':<12}{'batch':<7}{'loads M':>9}{'handler M':>11}{'ratio':>7}")
    for kind in kinds:
        for short in (False, True):
            loads = per_call(kind, short, "loads")
            handler = per_call(kind, short, "handler")
            batch = "short" if short else "full"
            print(f"{kind:<12}{batch:<7}{loads / 1e6:>9.2f}{handler / 1e6:>11.2f}{handler / loads:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3] == "short", sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:] or list(DEFAULT_KINDS)))
