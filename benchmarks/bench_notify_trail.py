"""How long the notify function takes to read an unfinished run's trail from the longest history Step Functions keeps.

Run: ``.venv/bin/python benchmarks/bench_notify_trail.py`` (or ``make bench``, which runs every benchmark).

Each road is rehearsed once offline (``rehearsal.rehearse``: the synthesized definition on simulated AWS), and its
execution history, state outputs included, is repeated up to 25,000 events (Step Functions' limit per execution).
The notify function's own reader (:func:`lambdas.notify.service.execution_trail`) then reads it newest first through
a paginator that hands over pages of 1,000 events, as ``GetExecutionHistory`` does: the run state, the training and
customization jobs, and the provisional deployments the state outputs name. CPU seconds are reported (the reader
uses one core), best of three.

Target: at most 5 CPU-seconds on this machine for either road. The notify function has 256 MB of memory, about a
seventh of a vCPU (Lambda allocates one vCPU at 1,769 MB), so 5 CPU-seconds here is roughly 35 s there, inside its
60-second timeout with room for the record, the report and the calls that stop and delete. Prints a table; exits
non-zero when the target is missed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lambdas.notify.events import ExecutionStatusChange
from lambdas.notify.service import execution_trail
from rehearsal.runner import Scenario, rehearse

EVENTS = 25_000
PAGE = 1_000
TARGET_CPU_S = 5.0


class _History:
    """GetExecutionHistory's paginator over ``events`` (oldest first), newest first as the notifier asks."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def get_paginator(self, operation: str) -> Any:
        events = self.events

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                ordered = list(reversed(events)) if kwargs.get("reverseOrder") else list(events)
                for start in range(0, len(ordered), PAGE):
                    yield {"events": ordered[start : start + PAGE]}

        return Paginator()


def _event() -> ExecutionStatusChange:
    arn = "arn:aws:states:us-east-1:123456789012:execution:Pipeline:bench"
    detail = {"executionArn": arn, "stateMachineArn": arn, "name": "bench", "status": "ABORTED"}
    return ExecutionStatusChange.model_validate(
        {
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "region": "us-east-1",
            "detail": detail,
        }
    )


def main() -> int:
    print(f"{'road':<10} {'events':>7} {'outputs MB':>11} {'CPU s':>7} {'jobs':>5} {'deployments':>12}")
    missed = []
    for road in ("sagemaker", "bedrock"):
        history = list(rehearse(Scenario(platform=road)).history)
        events = (history * (EVENTS // len(history) + 1))[:EVENTS]
        size = sum(len(str((e.get("stateExitedEventDetails") or {}).get("output") or "")) for e in events)
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            trail = execution_trail(_History(events), _event())
            best = min(best, time.process_time() - started)
        jobs = len(trail.training_jobs) + len(trail.customization_jobs)
        print(f"{road:<10} {len(events):>7} {size / 1e6:>11.1f} {best:>7.2f} {jobs:>5} {len(trail.provisional):>12}")
        if trail.state is None or best > TARGET_CPU_S:
            missed.append(road)
    if missed:
        print(f"target missed ({TARGET_CPU_S} CPU-s, a run state found) on: {', '.join(missed)}", file=sys.stderr)
        return 1
    print(f"target: at most {TARGET_CPU_S} CPU-s per road: met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
