"""Benchmark of the main job: ``python -m rehearsal.bench`` times ``python -m rehearsal`` end to end.

The whole rehearsal (CDK synthesis included) must finish in under 60 seconds of
wall time on each road (``--platform sagemaker`` and ``bedrock``); this measures each in a fresh
interpreter, as ``make rehearse`` runs it, prints one table row per road and exits non-zero when a
target is missed or a rehearsal does not end with a serving deployment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 60.0


# The roads a run can take: each is rehearsed end to end, to a serving deployment (exit 0).
ROADS = ("sagemaker", "bedrock")


def main() -> int:
    print(f"{'benchmark':<52} {'wall s':>8} {'target s':>9}  result")
    missed = 0
    for road in ROADS:
        with tempfile.TemporaryDirectory(prefix="rehearsal-bench-") as out:
            env = {**os.environ, "REHEARSAL_OUT": out, "REHEARSAL_PLATFORM": road}
            env.pop("REHEARSAL_FAIL_AT", None)
            started = time.monotonic()
            completed = subprocess.run([sys.executable, "-m", "rehearsal"], env=env, capture_output=True, text=True)
            seconds = time.monotonic() - started
        ok = completed.returncode == 0 and seconds < TARGET_SECONDS
        label = f"python -m rehearsal --platform {road} (with synth)"
        verdict = f"{'ok' if ok else 'MISSED'} (exit {completed.returncode})"
        print(f"{label:<52} {seconds:>8.1f} {TARGET_SECONDS:>9.0f}  {verdict}")
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-3000:])
        missed += not ok
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
