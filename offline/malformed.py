"""Random malformed reward-Lambda events: any JSON value in any field of a well-formed batch.

The Lambda runtime hands the reward function whatever JSON the caller sent, so the handler must
survive every JSON value anywhere. :func:`malformed_event` starts from a well-formed batch (system,
user and assistant turns, a reference, metadata, tools, tool calls) and replaces fields, at every
depth, with random JSON values (wrong types, empty and huge containers, unusual numbers, strings
that look like answers), sometimes replacing the whole event. The property test and the robustness
benchmark share it, both with a fixed seed.
"""

from __future__ import annotations

import random
import sys
from typing import Any

_STRINGS = [
    "",
    " ",
    "assistant",
    "nova_assistant",
    "ASSISTANT",
    "user",
    "tool",
    "HQ",
    "LQ_EDIT or HQ",
    "ANSWER: 16%",
    "#### 0.16",
    "\\boxed{\\frac{1}{0}}",
    "yes",
    "no",
    '{"tool_calls": [{"name": "search_case_law", "arguments": "{\\"query\\": 1"}]}',
    '```json\n{"a": 1}\n```',
    "NaN",
    "Infinity",
    "1e999",
    "-0",
    "\u0000\ud7ff\uffff",
    "İ" * 3,
    "ANSWER: 1 " * 40,
]
_NUMBERS: list[Any] = [0, -1, 1, 2**63, -(2**70), 0.5, 1e308, -1e-308, 3.14, 10**30]
_MESSAGE_KEYS = ("role", "content", "tool_calls", "text", "type", "toolUse", "name")
_ITEM_KEYS = ("id", "messages", "reference_answer", "metadata", "tools")


def _scalar(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.25:
        return rng.random() < 0.5
    if roll < 0.5:
        return rng.choice(_NUMBERS)
    if roll < 0.6:
        return rng.uniform(-1e6, 1e6)
    if roll < 0.9:
        return rng.choice(_STRINGS)
    return "".join(
        chr(rng.randint(1, sys.maxunicode if rng.random() < 0.3 else 127)) for _ in range(rng.randint(1, 12))
    )


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value: a scalar, or a list or object of random JSON values (bounded depth and size)."""
    roll = rng.random()
    if depth >= 3 or roll < 0.55:
        return _scalar(rng)
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = _MESSAGE_KEYS + _ITEM_KEYS + ("answer", "final_answer", "function", "arguments", "input")
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def well_formed_item(rng: random.Random, index: int) -> dict[str, Any]:
    """A valid request item; one of a few answer shapes (label, number, tool calls, text)."""
    shape = rng.randrange(4)
    assistant: dict[str, Any] = {"role": "assistant", "content": rng.choice(["HQ", "ANSWER: 16", "#### 42"])}
    reference: Any = rng.choice(["HQ", "16", 42, {"answer": "yes"}])
    if shape == 2:
        call = {"name": "search_case_law", "arguments": {"query": "tenancy", "limit": 3}}
        reference = {"tool_calls": [call]}
        assistant = rng.choice(
            [
                {"role": "assistant", "content": "Searching.", "tool_calls": [{"type": "function", "function": call}]},
                {"role": "assistant", "content": [{"text": "Searching."}, {"toolUse": {**call, "toolUseId": "t1"}}]},
            ]
        )
    elif shape == 3:
        assistant = {"role": "assistant", "content": [{"type": "text", "text": "The answer is HQ."}]}
    return {
        "id": f"item-{index}",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is it?"},
            assistant,
        ],
        "reference_answer": reference,
        "metadata": {"source": "random"},
        "tools": [{"type": "function", "function": {"name": "search_case_law", "parameters": {"type": "object"}}}],
    }


def _corrupt(value: Any, rng: random.Random, rate: float) -> Any:
    """``value`` with each field, at every depth, replaced by a random JSON value with probability ``rate``."""
    if rng.random() < rate:
        return random_json(rng)
    if isinstance(value, dict):
        corrupted = {key: _corrupt(field, rng, rate) for key, field in value.items() if rng.random() > rate / 4}
        if rng.random() < rate:
            corrupted[rng.choice(_MESSAGE_KEYS + _ITEM_KEYS)] = random_json(rng)
        return corrupted
    if isinstance(value, list):
        return [_corrupt(entry, rng, rate) for entry in value if rng.random() > rate / 4]
    return value


def malformed_event(rng: random.Random, size: int = 8) -> Any:
    """A batch of ``size`` items, each corrupted at random; sometimes not a list at all."""
    if rng.random() < 0.03:
        return random_json(rng)
    rate = rng.choice([0.05, 0.15, 0.4])
    return [_corrupt(well_formed_item(rng, index), rng, rate) for index in range(size)]
