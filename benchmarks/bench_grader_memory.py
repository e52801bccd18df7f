"""Peak memory of a reward Lambda grading 512-rollout batches: the figure behind its memory size.

Run from the repository root:

    python benchmarks/bench_grader_memory.py

For each shipped grader preset, a fresh interpreter imports the handler as the
Lambda runtime would, decodes a 512-rollout batch from its JSON text and grades
it 20 times; its peak resident set size (``VmHWM``, which unlike ``ru_maxrss``
starts afresh at exec) is reported next to the
memory the stack configures for grader functions (``stacks/graders.py``).
Target: peak under half the configured memory, so a batch several times larger
still fits. Exits 1 when a preset misses it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from stacks.graders import GRADER_MEMORY_MB  # noqa: E402

BUILDERS = {"classification": "label_batch", "numeric": "numeric_batch", "tool-calling": "tool_call_batch"}

_CHILD = """
import json, os, random, sys
def high_water_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
os.environ["GRADER_PRESET"] = {preset!r}
baseline = high_water_mb()
import bench_reward
from lambdas.reward import handler
text = json.dumps(getattr(bench_reward, {builder!r})(random.Random(7)))
sys.stdout = open(os.devnull, "w")
for _ in range(20):
    results = handler.lambda_handler(json.loads(text), bench_reward.CONTEXT)
sys.stdout = sys.__stdout__
assert len(results) == 512
print(json.dumps({{"baseline_mb": baseline, "peak_mb": high_water_mb(), "batch_kib": len(text) / 1024}}))
"""


def measure(preset: str, builder: str) -> dict:
    code = _CHILD.format(root=str(REPO_ROOT), bench=str(REPO_ROOT / "benchmarks"), preset=preset, builder=builder)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    limit_mb = GRADER_MEMORY_MB / 2
    print(f"configured grader memory: {GRADER_MEMORY_MB} MB; target peak < {limit_mb:.0f} MB")
    print(f"{'preset':<16} {'batch KiB':>10} {'interpreter MB':>15} {'peak MB':>9}  result")
    ok = True
    for preset, builder in BUILDERS.items():
        row = measure(preset, builder)
        passed = row["peak_mb"] < limit_mb
        ok &= passed
        print(
            f"{preset:<16} {row['batch_kib']:>10.0f} {row['baseline_mb']:>15.1f} {row['peak_mb']:>9.1f}  "
            f"{'ok' if passed else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
