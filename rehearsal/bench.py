"""Benchmark of the main job: ``python -m rehearsal.bench`` times ``python -m rehearsal`` end to end.

The whole rehearsal (CDK synthesis included) must finish in under 60 seconds of
wall time; this measures it in a fresh interpreter, as ``make rehearse`` runs it,
prints one table row and exits non-zero when the target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 60.0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rehearsal-bench-") as out:
        env = {**os.environ, "REHEARSAL_OUT": out}
        env.pop("REHEARSAL_FAIL_AT", None)
        started = time.monotonic()
        completed = subprocess.run([sys.executable, "-m", "rehearsal"], env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
    ok = completed.returncode == 0 and seconds < TARGET_SECONDS
    print(f"{'benchmark':<34} {'wall s':>8} {'target s':>9}  result")
    print(
        f"{'python -m rehearsal (with synth)':<34} {seconds:>8.1f} {TARGET_SECONDS:>9.0f}  "
        f"{'ok' if ok else 'MISSED'} (exit {completed.returncode})"
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-3000:])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
