"""Run every benchmark in this folder: ``python -m benchmarks`` (or ``make bench``).

Each ``bench_*.py`` is a standalone script that prints its own table and exits
non-zero when it misses its target; this runner runs them in turn, each in a
fresh interpreter (cold-start figures must not share imports), and fails if any failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    failed = []
    for script in scripts:
        print(f"\n== {script.name} ==", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nbenchmarks missing their targets: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nall benchmarks met their targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
