"""Simulated time for the rehearsal: one clock ("lane") per sequential flow of the execution.

A lane is the simulated time of one thread of control of the state machine.
Every thread the interpreter starts inherits the lane of the thread that
started it (a Task evaluated in a helper thread advances its state's lane), a
Parallel branch forks a lane of its own at the Parallel's start, and the
Parallel ends when its latest branch does. Jobs, Wait states, retry intervals
and Lambda invocations advance the current lane instead of sleeping, so a run
of several simulated hours takes seconds, and history timestamps show branches
overlapping exactly as they would on AWS.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


class Lane:
    """Simulated seconds elapsed since the execution started, for one flow of control."""

    def __init__(self, epoch: dt.datetime, seconds: float = 0.0) -> None:
        self.epoch = epoch
        self.seconds = seconds
        self.children: list[Lane] = []  # lanes of Parallel branches forked from this one, until joined
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.seconds += seconds

    def advance_to(self, seconds: float) -> None:
        with self._lock:
            self.seconds = max(self.seconds, seconds)

    def fork(self) -> Lane:
        """A lane for a parallel branch that starts now."""
        return Lane(self.epoch, self.seconds)

    def now(self) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=self.seconds)


def current() -> Lane | None:
    """The lane of the calling thread (None outside a rehearsed execution)."""
    return getattr(_local, "lane", None)


def set_current(lane: Lane | None) -> None:
    _local.lane = lane


@contextmanager
def using(lane: Lane | None) -> Iterator[Lane | None]:
    """Run a block on ``lane`` (threads started inside inherit it)."""
    previous = current()
    set_current(lane)
    try:
        yield lane
    finally:
        set_current(previous)


def elapsed() -> float:
    """Simulated seconds on the calling thread's lane (0 when there is none)."""
    lane = current()
    return lane.seconds if lane else 0.0


def advance(seconds: float) -> None:
    lane = current()
    if lane is not None:
        lane.advance(seconds)


def utcnow() -> dt.datetime:
    """Simulated wall-clock time of the calling thread (real time outside an execution)."""
    lane = current()
    return lane.now() if lane else dt.datetime.now(dt.UTC)
