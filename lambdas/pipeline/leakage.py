"""Evaluation prompts that also appear in the training data (a pure function over prompts).

A prompt "leaks" when, after whitespace normalisation (runs of spaces, tabs and line breaks
become one space; leading and trailing space is dropped), an evaluation prompt is equal to a
prompt of a training split. Such a prompt scores what the model memorised, not what it learned.

The evaluation prompts are held as 16-byte digests, so memory grows with the evaluation set
only; training prompts stream through :meth:`LeakCounter.see` one at a time. Preflight feeds
the counter while it validates the datasets; :func:`find_leaks` is the same check over plain
iterables, for any caller that already holds the prompts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

EXAMPLES = 3
EXAMPLE_CHARS = 80


def normalise(text: str) -> str:
    """``text`` with every run of whitespace made one space, trimmed."""
    return " ".join(text.split())


def _digest(text: str) -> bytes:
    return hashlib.blake2b(normalise(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass
class Leakage:
    """How many distinct evaluation prompts each training split contains."""

    eval_prompts: int
    found: dict[str, int]
    examples: list[str] = field(default_factory=list)

    @property
    def leaked(self) -> bool:
        return any(self.found.values())

    def warnings(self) -> list[str]:
        """One sentence per split that holds evaluation prompts."""
        return [
            f"{count} of {self.eval_prompts} evaluation prompts appear verbatim in the {split} data: "
            "their scores measure memory, not learning"
            for split, count in self.found.items()
            if count
        ]


class LeakCounter:
    """Counts, per split, the distinct evaluation prompts seen among training prompts."""

    def __init__(self, eval_prompts: Iterable[str]) -> None:
        self._prompts: dict[bytes, str] = {}
        for prompt in eval_prompts:
            self._prompts.setdefault(_digest(prompt), prompt)
        self._found: dict[str, set[bytes]] = {}

    def split(self, name: str) -> None:
        """Declare a training split (so it is reported with 0 when nothing leaks)."""
        self._found.setdefault(name, set())

    def see(self, split: str, prompt: str) -> None:
        digest = _digest(prompt)
        if digest in self._prompts:
            self._found.setdefault(split, set()).add(digest)

    def result(self) -> Leakage:
        examples: list[str] = []
        for digests in self._found.values():
            for digest in digests:
                text = normalise(self._prompts[digest])
                shown = text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "\u2026"
                if shown not in examples and len(examples) < EXAMPLES:
                    examples.append(shown)
        return Leakage(
            eval_prompts=len(self._prompts),
            found={name: len(digests) for name, digests in self._found.items()},
            examples=sorted(examples),
        )


def find_leaks(eval_prompts: Iterable[str], splits: Mapping[str, Iterable[str]]) -> Leakage:
    """Which evaluation prompts appear, whitespace-normalised, in each training split."""
    counter = LeakCounter(eval_prompts)
    for name, prompts in splits.items():
        counter.split(name)
        for prompt in prompts:
            counter.see(name, prompt)
    return counter.result()
