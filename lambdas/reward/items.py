"""Reading reward-Lambda request items (docs/contracts/reward-lambda.md) into :class:`Sample` objects.

The training containers disagree on details, so parsing is tolerant where the
contract is loose and strict where a guess would grade the wrong text:

- ``reference_answer`` is read at the top level first, then under ``metadata``;
- ``content`` is a string, a list of parts (``{"type": "text", "text": ...}`` or
  ``{"text": ...}``; other part types such as reasoning are skipped) or absent
  when the turn is an OpenAI-style ``tool_calls`` message. A turn that calls tools
  (``tool_calls``, or Converse ``toolUse`` parts) is graded as the JSON
  ``{"content": <its text, when it has any>, "tool_calls": [...]}``, so text beside the
  calls never hides them;
- the assistant role is ``assistant`` or ``nova_assistant``; the graded text is
  the **last** assistant message.

An item that cannot be graded yields a short reason string instead of a sample;
the engine turns it into the minimum score plus a ``malformed:<reason>`` metric.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas.reward.spec import MISSING

ASSISTANT_ROLES = frozenset({"assistant", "nova_assistant"})

# Malformed-item reasons (metric names are "malformed:<reason>").
NOT_AN_OBJECT = "not_an_object"
NO_MESSAGES = "no_messages"
NO_ASSISTANT_TURN = "no_assistant_turn"
BAD_CONTENT = "bad_content"
MISSING_REFERENCE = "missing_reference"
BAD_REFERENCE = "bad_reference"


class Sample:
    """One gradable rollout: the graded text, the reference (or ``MISSING``) and the raw item.

    ``memo`` holds what graders read from it once and share (the JSON every part of a weighted
    spec selects from is parsed once per rollout, not once per part); it lives as long as the batch.
    """

    __slots__ = ("index", "id", "response", "reference", "item", "memo")

    def __init__(self, index: int, item_id: Any, response: str, reference: Any, item: dict[str, Any]) -> None:
        self.index = index
        self.id = item_id
        self.response = response
        self.reference = reference
        self.item = item
        self.memo: dict[Any, Any] | None = None

    def __repr__(self) -> str:  # never dump whole prompts into logs or test output
        return f"Sample(index={self.index}, id={self.id!r}, response={self.response[:40]!r}...)"


class ParsedSample(Sample):
    """A sample whose response is a JSON object or array already parsed (``parsed``), e.g. a selected field.

    Graders that read JSON take ``parsed`` as it is (never modifying it: it may be shared with other
    parts of a spec); the response text, the same value written as JSON, is only written when read.
    """

    __slots__ = ("parsed", "_text")

    def __init__(self, index: int, item_id: Any, parsed: Any, reference: Any, item: dict[str, Any]) -> None:
        self.index = index
        self.id = item_id
        self.parsed = parsed
        self._text: str | None = None
        self.reference = reference
        self.item = item
        self.memo = None

    @property
    def response(self) -> str:
        if self._text is None:
            self._text = json.dumps(self.parsed)
        return self._text

    @response.setter
    def response(self, text: str) -> None:
        raise AttributeError("the response of a parsed sample is its parsed value")


def item_id(item: object) -> Any:
    """The id echoed in the result: the item's ``id`` verbatim, ``None`` when absent or not an object."""
    return item.get("id") if isinstance(item, dict) else None


def reference_of(item: dict[str, Any]) -> Any:
    """``reference_answer`` from the top level, else from ``metadata``; ``MISSING`` when neither has one."""
    reference = item.get("reference_answer")
    if reference is not None:
        return reference
    metadata = item.get("metadata")
    if isinstance(metadata, dict):
        reference = metadata.get("reference_answer")
        if reference is not None:
            return reference
    return MISSING


def _text_of_parts(parts: list[Any]) -> str | None:
    texts = []
    tool_uses = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            return None
        text = part.get("text")
        if text is not None:
            if not isinstance(text, str):
                return None
            kind = part.get("type")
            if kind is None or kind == "text":
                texts.append(text)
        elif isinstance(part.get("toolUse"), dict):
            tool_uses.append(part["toolUse"])
    text = texts[0] if len(texts) == 1 else "\n".join(texts)
    # Converse-style tool use: graded as the JSON the tool_call grader understands.
    return with_tool_calls(text, tool_uses) if tool_uses else text


def with_tool_calls(text: str, calls: list[Any]) -> str:
    """A turn that calls tools, as JSON: ``{"tool_calls": [...]}``, with ``content`` first when it has text too."""
    if text.strip():
        return json.dumps({"content": text, "tool_calls": calls})
    return json.dumps({"tool_calls": calls})


def response_text(message: dict[str, Any]) -> str | None:
    """The text of one assistant message, or ``None`` when its content has the wrong type."""
    content = message.get("content")
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and tool_calls:
        # OpenAI-style tool calls, with or without text beside them: never drop the calls.
        text = content if isinstance(content, str) else _text_of_parts(content) if isinstance(content, list) else ""
        return None if text is None else with_tool_calls(text, tool_calls)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _text_of_parts(content)
    if content is None:
        return json.dumps({"tool_calls": tool_calls}) if isinstance(tool_calls, list) else None
    if isinstance(content, dict):
        text = content.get("text")
        if isinstance(text, str):
            return text
    return None


def parse_item(index: int, item: object, needs_reference: bool) -> Sample | str:
    """A :class:`Sample`, or the reason (a short snake_case string) the item cannot be graded."""
    # The usual item first, read without the general walk below (this runs once per rollout): the last
    # message is the assistant's, its content a string and no tool calls beside it.
    if type(item) is dict:
        messages = item.get("messages")
        if type(messages) is list and messages:
            message = messages[-1]
            if type(message) is dict and message.get("role") == "assistant" and "tool_calls" not in message:
                content = message.get("content")
                if type(content) is str:
                    reference = item.get("reference_answer")
                    if reference is None:
                        reference = reference_of(item)
                        if needs_reference and reference is MISSING:
                            return MISSING_REFERENCE
                    return Sample(index, item.get("id"), content, reference, item)
    return _parse_any_item(index, item, needs_reference)


def _parse_any_item(index: int, item: object, needs_reference: bool) -> Sample | str:
    if not isinstance(item, dict):
        return NOT_AN_OBJECT
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        return NO_MESSAGES
    for message in reversed(messages):
        if isinstance(message, dict):
            role = message.get("role")
            # A role of any other JSON type (a list, an object) is not the assistant's, never an error.
            if isinstance(role, str) and (role in ASSISTANT_ROLES or role.lower() in ASSISTANT_ROLES):
                break
    else:
        return NO_ASSISTANT_TURN
    text = response_text(message)
    if text is None:
        return BAD_CONTENT
    reference = reference_of(item)
    if needs_reference and reference is MISSING:
        return MISSING_REFERENCE
    return Sample(index, item.get("id"), text, reference, item)


def last_user_text(item: dict[str, Any], limit: int = 4000) -> str:
    """The last user turn's text (for judges), cut to ``limit`` characters."""
    messages = item.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = response_text(message)
                if text:
                    return text[:limit]
    return ""
