"""Pre-flight dataset validation throughput and memory on a generated 1 GB JSONL file.

Run: ``.venv/bin/python benchmarks/bench_preflight.py`` (or ``make bench``, which runs every
benchmark). Options: ``--size-mb N`` (default 1024) for the SFT file, ``--tmp DIR`` for where
the generated files go (removed afterwards).

The files are generated in a temporary folder (varied rows in the documented formats,
docs/contracts/datasets.md, a few invalid lines mixed in), then each one is validated by the
real validator (:func:`lambdas.pipeline.datasets.validate_stream`, the code the pre-flight
Lambda runs on the S3 ``StreamingBody``) in a fresh child process, so the peak RSS is that
of validation alone. Throughput is reported per CPU-second (the validator uses one core)
and per wall-clock second.

Targets: at least 40 MB/s per core and a peak RSS under 256 MB (the Lambda has 512 MB).
Prints a table; exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_MB_PER_CORE_S = 40.0
TARGET_PEAK_RSS_MB = 256.0
MB = 1 << 20
_WORDS = [
    "question",
    "answer",
    "model",
    "label",
    "value",
    "python",
    "data",
    "error",
    "code",
    "function",
    "request",
    "stack",
    "overflow",
    "merge",
    "dictionary",
    "expression",
    "returns",
    "nothing",
    "cancel",
    "task",
    "cleanly",
    "delimiter",
    "column",
]


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _sft_row(rng: random.Random) -> dict:
    turns = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        turns.append({"role": "user", "content": [{"text": _text(rng, 10, 150)}]})
        turns.append({"role": "assistant", "content": [{"text": _text(rng, 1, 40)}]})
    return {"system": [{"text": _text(rng, 5, 30)}], "messages": turns}


def _rft_row(rng: random.Random) -> dict:
    return {
        "id": f"q-{rng.randrange(10**9)}",
        "messages": [
            {"role": "system", "content": _text(rng, 5, 30)},
            {"role": "user", "content": _text(rng, 10, 150)},
        ],
        "reference_answer": rng.choice(["HQ", "LQ_EDIT", "LQ_CLOSE", 42, {"final_answer": "16"}]),
        "source": "bench",
    }


def _gen_qa_row(rng: random.Random) -> dict:
    return {"query": _text(rng, 10, 150), "response": _text(rng, 1, 60), "system": _text(rng, 5, 30)}


ROWS = {"sft": _sft_row, "rft": _rft_row, "gen_qa": _gen_qa_row}


def generate(path: Path, kind: str, size_bytes: int, seed: int = 7) -> int:
    """Write ``size_bytes`` of ``kind`` rows (a pool of distinct lines, repeated); returns the line count."""
    rng = random.Random(seed)
    pool = [(json.dumps(ROWS[kind](rng)) + "\n").encode() for _ in range(2000)]
    pool[17] = b'{"messages": "truncated\n'  # invalid lines, as real datasets have
    lines = written = 0
    block: list[bytes] = []
    with path.open("wb") as out:
        while written < size_bytes:
            line = pool[lines % len(pool)]
            block.append(line)
            written += len(line)
            lines += 1
            if len(block) == 4096:
                out.write(b"".join(block))
                block.clear()
        out.write(b"".join(block))
    return lines


def measure(path: Path, kind: str) -> dict:
    """Validate ``path`` in this process (run as a child) and report throughput and peak memory."""
    sys.path.insert(0, str(REPO_ROOT))
    from lambdas.pipeline.datasets import validate_stream

    size = path.stat().st_size
    wall, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        report = validate_stream(stream, kind)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "kind": kind,
        "size_mb": size / MB,
        "rows": report.rows,
        "invalid": report.error_count,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak_kb / 1024,
    }


def _child(path: Path, kind: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", str(path), kind],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    return json.loads(result.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the SFT file (default 1024)")
    parser.add_argument("--tmp", default=None, help="folder for the generated files (default: system temp)")
    parser.add_argument("--measure", nargs=2, metavar=("FILE", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return 0

    sizes = {"sft": args.size_mb * MB, "rft": max(args.size_mb // 4, 1) * MB, "gen_qa": max(args.size_mb // 4, 1) * MB}
    folder = Path(tempfile.mkdtemp(prefix="bench-preflight-", dir=args.tmp))
    results = []
    try:
        for kind, size in sizes.items():
            path = folder / f"{kind}.jsonl"
            started = time.perf_counter()
            generate(path, kind, size)
            generated = time.perf_counter() - started
            result = _child(path, kind)
            result["generate_s"] = generated
            results.append(result)
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    header = (
        f"{'dataset':<8}{'size':>9}{'rows':>11}{'invalid':>9}{'wall s':>8}{'MB/s':>8}"
        f"{'MB/s/core':>11}{'peak RSS':>10}  result"
    )
    print("Pre-flight dataset validation (lambdas.pipeline.datasets.validate_stream, one process per file)")
    print(f"targets: >= {TARGET_MB_PER_CORE_S:g} MB/s per core, peak RSS < {TARGET_PEAK_RSS_MB:g} MB")
    print(header)
    print("-" * len(header))
    missed = []
    for r in results:
        per_core = r["size_mb"] / max(r["cpu_s"], 1e-9)
        wall_rate = r["size_mb"] / max(r["wall_s"], 1e-9)
        ok = per_core >= TARGET_MB_PER_CORE_S and r["peak_rss_mb"] < TARGET_PEAK_RSS_MB
        if not ok:
            missed.append(r["kind"])
        print(
            f"{r['kind']:<8}{r['size_mb']:>7.0f}MB{r['rows']:>11,}{r['invalid']:>9,}{r['wall_s']:>8.1f}"
            f"{wall_rate:>8.1f}{per_core:>11.1f}{r['peak_rss_mb']:>8.1f}MB  {'PASS' if ok else 'MISS'}"
        )
    if missed:
        print(f"missed the targets: {', '.join(missed)}", file=sys.stderr)
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
