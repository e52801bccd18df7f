"""The live progress view and the timeline summary of a rehearsed execution.

:class:`ProgressView` reads the execution history as it grows (its timestamps
are simulated time) and prints one line when a job or stage starts and when a
state ends: simulated elapsed time, stage, state name, job names, and the
duration or the error. :func:`timeline_lines` draws the jobs and Bedrock
operations on one simulated time axis and names the critical path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from lambdas.pipeline import naming

_STAGE_WORDS = (
    ("evaluation", "eval"),
    ("metrics", "eval"),
    ("rft", "rft"),
    ("sft", "sft"),
    ("import", "import"),
    ("deploy", "deploy"),
    ("gate", "gate"),
    ("record", "record"),
    ("validat", "preflight"),
    ("preflight", "preflight"),
)


# The parameter that names the job a .sync Task starts, by integration (SageMaker training, Bedrock customization).
_JOB_NAME_PARAMETER = {"sagemaker": "TrainingJobName", "bedrock": "JobName"}


def stage_of(state_name: str) -> str:
    name = state_name.lower()
    for word, stage in _STAGE_WORDS:
        if word in name:
            return stage
    return "run"


def fmt_minutes(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


def fmt_duration(seconds: float) -> str:
    return f"{int(seconds)}s" if seconds < 60 else fmt_minutes(seconds)


@dataclass
class Span:
    """One activity on the simulated time axis (seconds since the execution started)."""

    label: str
    kind: str  # sft | rft | eval | import | deploy
    start: float
    end: float
    name: str = ""
    status: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


class ProgressView:
    """Turns history events into progress lines on ``out``."""

    def __init__(self, out: TextIO, start: dt.datetime) -> None:
        self.out = out
        self.start = start
        self.seen = 0
        self._entered: dict[str, float] = {}
        self._jobs: dict[str, str] = {}  # state name -> job name
        self._last_status: dict[str, str] = {}
        self._failure: dict[str, str] = {}
        self._current = ""
        # Lines of the Parallel states being run: history lists one branch after the other, the view prints
        # them in time order when the outermost Parallel ends.
        self._parallel_depth = 0
        self._held: list[tuple[float, str]] = []
        self._parallels: list[str] = []

    def _at(self, event: Mapping[str, Any]) -> float:
        stamp = event["timestamp"]
        if isinstance(stamp, str):
            stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (stamp - self.start).total_seconds()

    def _line(self, at: float, mark: str, state: str, detail: str = "", stage: str | None = None) -> None:
        stage = stage or stage_of(state)
        text = f"[+{fmt_minutes(at):>6}] {mark} {stage:<9} {state:<44} {detail}".rstrip()
        if self._parallel_depth:
            self._held.append((at, text))
            return
        self.out.write(text + "\n")
        self.out.flush()

    def _release(self) -> None:
        """Print the held lines of the Parallel that ended, earliest first (ties keep history order)."""
        held, self._held = sorted(self._held, key=lambda line: line[0]), []
        for _, text in held:
            self.out.write(text + "\n")
        self.out.flush()

    def feed(self, events: Sequence[Mapping[str, Any]]) -> None:
        for event in events[self.seen :]:
            self._event(event)
        self.seen = len(events)

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        at = self._at(event)
        if kind in ("TaskStateEntered", "ParallelStateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self._entered[name] = at
            self._current = name
            self._failure.pop(name, None)
            if kind == "ParallelStateEntered":
                self._line(at, "▶", name, "(parallel branches)", stage="parallel")
                self._parallel_depth += 1
                self._parallels.append(name)
        elif kind == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] in _JOB_NAME_PARAMETER:
            details = event["taskScheduledEventDetails"]
            parameters = json.loads(details.get("parameters") or "{}")
            job = parameters.get(_JOB_NAME_PARAMETER[details["resourceType"]], "")
            self._jobs[self._current] = job
            self._line(at, "▶", self._current, job)
        elif kind == "TaskFailed":
            self._failure[self._current] = _error_text(event.get("taskFailedEventDetails", {}))
        elif kind == "TaskSucceeded":
            self._failure.pop(self._current, None)
        elif kind == "ParallelStateFailed":
            # Caught by the Parallel's Catch: no exit event follows.
            name = self._parallels.pop() if self._parallels else self._current
            why = _error_text(event.get("parallelStateFailedEventDetails") or {}) or "a branch failed"
            self._line(at, "✗", name, why, stage="parallel")
            self._release_if_done("ParallelStateExited")
        elif kind in ("PassStateEntered", "FailStateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            lowered = name.lower()
            if kind == "FailStateEntered" or lowered.endswith(("failed", "timed out")):
                self._line(at, "✗", name)
        elif kind in ("TaskStateExited", "ParallelStateExited"):
            details = event["stateExitedEventDetails"]
            name = details["name"]
            took = at - self._entered.get(name, at)
            detail = self._jobs.pop(name, "") or _summary(details.get("output"), name)
            failure = self._failure.pop(name, None)
            if kind == "ParallelStateExited":
                failure = failure or _failed_stages(details.get("output"))
                if self._parallels:
                    self._parallels.pop()
            if failure:
                self._line(
                    at,
                    "✗",
                    name,
                    f"{detail}  {failure}".strip(),
                    stage="parallel" if kind == "ParallelStateExited" else None,
                )
                self._release_if_done(kind)
                return
            if kind == "TaskStateExited" and detail and self._last_status.get(name) == detail:
                return  # an unchanged poll result would repeat the previous line
            self._last_status[name] = detail
            self._line(
                at,
                "✓",
                name,
                f"{detail}  ({fmt_duration(took)})".strip(),
                stage="parallel" if kind == "ParallelStateExited" else None,
            )
            self._release_if_done(kind)

    def _release_if_done(self, kind: str) -> None:
        if kind == "ParallelStateExited":
            self._parallel_depth = max(self._parallel_depth - 1, 0)
        if not self._parallel_depth and self._held:
            self._release()


def _error_text(details: dict) -> str:
    """``Error: reason``, with a failed job's FailureReason (SageMaker) or FailureMessage (Bedrock) or a Lambda's
    errorMessage when the cause has one."""
    error, cause = details.get("error", ""), details.get("cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict):
        cause = parsed.get("FailureReason") or parsed.get("FailureMessage") or parsed.get("errorMessage") or cause
    cause = str(cause).splitlines()[0] if cause else ""
    return f"{error}: {cause[:110]}" if cause else error


def _failed_stages(output: str | None) -> str | None:
    """``failed: <stage>, ...`` for the stages a Parallel state's branches recorded as failed, else None."""
    try:
        stages = (json.loads(output or "null") or {}).get("stages") or {}
    except (ValueError, AttributeError):
        return None
    failed = [naming.stage_title(k) for k, v in stages.items() if isinstance(v, dict) and v.get("status") == "FAILED"]
    return f"failed: {', '.join(failed)}" if failed else None


def _summary(output: str | None, state: str) -> str:
    """A few words about a state's result: a job name, a status, an ARN."""
    try:
        value = json.loads(output or "null")
    except ValueError:
        return ""
    node: Any = value
    for key in _result_path_guess(state):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return ""
    if isinstance(node.get("phase"), str):  # an evaluation through Bedrock inference, call by call
        rows = f" {node.get('processed', 0)}/{node['total']}" if node.get("total") else ""
        return f"{node['phase']}{rows}"
    if isinstance(node.get("decision"), dict) and isinstance(node["decision"].get("reason"), str):
        return str(node["decision"]["reason"])
    if node.get("name") and node.get("attempt"):
        return f"{node['name']} (attempt {node['attempt']})"
    if isinstance(node.get("status"), str):
        return node["status"]
    return ""


def _result_path_guess(state: str) -> list[str]:
    name = state.lower()
    if name.startswith(("prepare", "decide whether to retry")):
        return ["job"]
    if name.startswith("evaluate") and "bedrock" in name:
        return ["job", "evaluation"]
    if "deployment" in name or name.startswith("deploy"):
        return ["deployment"]
    if "import" in name:
        return ["model"]
    if "gate" in name:
        return ["gate"]
    if name.startswith("record"):
        return ["record"]
    return ["__none__"]


def critical_path(spans: Iterable[Span]) -> list[Span]:
    """The chain of activities that ends last, each starting when (or after) the previous ended."""
    remaining = sorted(spans, key=lambda s: s.end)
    if not remaining:
        return []
    path = [remaining[-1]]
    while True:
        before = [s for s in remaining if s.end <= path[-1].start + 1e-6 and s is not path[-1]]
        if not before:
            break
        path.append(max(before, key=lambda s: s.end))
    return list(reversed(path))


def timeline_lines(spans: list[Span], total_seconds: float, width: int = 48) -> list[str]:
    """A Gantt chart of the activities and the critical path, on simulated time."""
    if not spans:
        return ["Timeline: no jobs ran"]
    total = max(total_seconds, max(s.end for s in spans), 60.0)
    per_char = total / width
    lines = [f"Timeline (simulated; one mark = {fmt_duration(per_char)}):"]
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        begin = int(span.start / per_char)
        length = max(1, int(round(span.seconds / per_char)))
        bar = (" " * begin + ("█" if span.status in ("", "Completed", "Active") else "▒") * length)[:width]
        lines.append(
            f"  {span.label:<14} |{bar:<{width}}| {fmt_minutes(span.start):>5} → {fmt_minutes(span.end):<6}"
            f" {span.name} {'' if span.status in ('', 'Completed', 'Active') else span.status}".rstrip()
        )
    path = critical_path(spans)
    chain = " → ".join(f"{s.label} {fmt_minutes(s.seconds)}" for s in path)
    on_path = sum(s.seconds for s in path)
    lines.append(
        f"Critical path: {chain} = {fmt_minutes(on_path)} of {fmt_minutes(total_seconds)} simulated "
        f"(Lambda steps and status polls make up the rest)"
    )
    beside = sum(s.seconds for s in spans) - on_path
    if beside > 0:
        lines.append(f"Off the critical path: {fmt_minutes(beside)} of jobs ran beside it")
    return lines
