"""Simulated Bedrock inference: ``Converse`` on the base model or a custom model's on-demand deployment.

The request is checked against botocore's ``bedrock-runtime`` model, then the ``modelId``
decides who answers:

- an inference profile (``us.amazon.nova-2-lite-v1:0``), a foundation model ID or ARN: the
  base model. A model that is served only through inference profiles (Nova 2 Lite) refuses
  its bare model ID with ``ValidationException``, as Bedrock does;
- a custom model deployment ARN (``CreateCustomModelDeployment``): the model it serves, once
  ``Active`` (``ModelNotReadyException`` while it is created; ``ResourceNotFoundException``
  once deleted); its quality is that of the stage whose weights it holds (``sft``/``rft``);
- a custom model ARN: refused, on-demand inference of a custom model goes through a deployment.

The answer follows the evaluated model's simulated exact match (``Faults.metrics``, the case
study: base 13%, SFT 77%, RFT 79%): the prompt is looked up among the dataset rows the
rehearsal uploaded (:meth:`BedrockRuntimeSimulator.learn`), and row ``i`` of its file is
answered with its reference when :func:`~rehearsal.simulators.grading.answers_correctly`
says so, else with a wrong answer; an unknown prompt is answered wrongly. ``usage`` counts
about four characters a token. Faults: ``throttle["eval"]`` answers the first call with that
error code; ``fail_at="eval"`` makes the evaluated model of ``fail_eval_of`` (``final``: the
RFT model) answer ``ModelErrorException``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.faults import check_request, service_error, throttle_once
from rehearsal.simulators.grading import WRONG_ANSWER, answers_correctly, reference_text

# Foundation models served on demand only through inference profiles (cross-Region inference): Nova 2 Lite
# (Amazon Nova User Guide, "Core inference": its model IDs are the global. and us. profiles).
PROFILE_ONLY = ("amazon.nova-2-lite-v1",)
_PROFILE = re.compile(r"(?:[a-z]{2,6}\.)(?P<model>amazon\.[a-z0-9-]+(?::[a-z0-9-]+){0,2})")
_DEPLOYMENT = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:custom-model-deployment/[a-z0-9]{12}")
_CUSTOM_MODEL = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:custom-model/.+")
_FOUNDATION_ARN = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+::foundation-model/(?P<model>.+)")
_PROFILE_ARN = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:inference-profile/(?P<profile>.+)")


@dataclass
class ConverseCall:
    """One answered call, kept for the rehearsal record and its timeline."""

    model_id: str
    evaluates: str  # baseline | sft | rft
    at: float
    correct: bool | None  # None: the prompt is not a known dataset row
    error: str | None = None


class BedrockRuntimeSimulator:
    """``Converse`` answered by the base model or a deployed custom model, at the case study's quality."""

    def __init__(self, bedrock: BedrockSimulator) -> None:
        self.bedrock = bedrock
        self.calls: list[ConverseCall] = []
        self._references: dict[str, tuple[int, str]] = {}  # prompt -> (row index in its file, reference)
        self._throttled: set[str] = set()
        self._lock = threading.RLock()

    def learn(self, body: bytes | str) -> int:
        """Remember the prompts and references of a dataset file (JSON Lines: gen_qa, RFT or Converse rows);
        a prompt already known keeps its first row. Returns how many rows were read."""
        text = body.decode() if isinstance(body, bytes) else body
        count = 0
        for index, line in enumerate(text.splitlines()):
            try:
                row = json.loads(line)
            except ValueError:
                continue  # preflight reports broken rows; the model never sees them
            if not isinstance(row, dict):
                continue
            prompt, reference = _prompt_and_reference(row)
            if prompt:
                self._references.setdefault(prompt.strip(), (index, reference))
                count += 1
        return count

    # -- API ---------------------------------------------------------------------------

    def converse(self, params: dict) -> dict:
        check_request("bedrock-runtime", "Converse", params)
        model_id = params["modelId"]
        with self._lock:
            faults = self.bedrock.faults
            if code := throttle_once(faults, "eval", self._throttled):
                self.calls.append(ConverseCall(model_id, "", clock.elapsed(), None, code))
                raise service_error(code, "Too many requests, please wait before trying again.", 429)
            evaluates = self._evaluated_model(model_id)
            failing = faults.fail_eval_of if faults.fail_eval_of != "final" else "rft"
            if faults.fail_at == "eval" and evaluates == failing:
                self.calls.append(ConverseCall(model_id, evaluates, clock.elapsed(), None, "ModelErrorException"))
                raise service_error(
                    "ModelErrorException",
                    "The model failed to process the request (failure injected by the rehearsal)",
                    424,
                )
            prompt = _last_user_text(params.get("messages") or [])
            known = self._lookup(prompt)
            quality = faults.metrics[evaluates].get("exact_match", 0.0)
            correct = None if known is None else answers_correctly(known[0], quality)
            answer = known[1] if known is not None and correct else WRONG_ANSWER
            self.calls.append(ConverseCall(model_id, evaluates, clock.elapsed(), correct))
        system = " ".join(str(part.get("text", "")) for part in params.get("system") or [])
        input_tokens = _tokens(system + prompt)
        output_tokens = _tokens(answer)
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 180 + 12 * output_tokens},
        }

    # -- internals ---------------------------------------------------------------------

    def _evaluated_model(self, model_id: str) -> str:
        """``baseline``, ``sft`` or ``rft``: whose weights answer ``model_id``; Bedrock's errors otherwise."""
        if _DEPLOYMENT.fullmatch(model_id):
            deployment = self.bedrock._deployment(model_id)  # ResourceNotFoundException once deleted
            if deployment.status() != "Active":
                raise service_error(
                    "ModelNotReadyException", f"Deployment {model_id} is {deployment.status()}, not Active", 429
                )
            model = self.bedrock.models.get(deployment.served_model())
            return (model.stage if model else None) or "sft"
        foundation = _FOUNDATION_ARN.fullmatch(model_id)
        bare = foundation["model"] if foundation else model_id
        refusal = (
            f"Invocation of custom model {model_id} needs a custom model deployment or Provisioned Throughput"
            if _CUSTOM_MODEL.fullmatch(model_id)
            else f"Invocation of model ID {bare} with on-demand throughput isn't supported. Retry your request "
            "with the ID or ARN of an inference profile that contains this model."
            if bare.startswith(PROFILE_ONLY)
            else None
        )
        if refusal:
            raise service_error("ValidationException", refusal)
        profile = _PROFILE_ARN.fullmatch(model_id)
        named = _PROFILE.fullmatch(profile["profile"] if profile else model_id)
        if named is None and not bare.startswith("amazon.nova"):
            raise service_error("ResourceNotFoundException", f"Model {model_id} not found in this simulation", 404)
        return "baseline"

    def _lookup(self, prompt: str) -> tuple[int, str] | None:
        """The known row of ``prompt``: exactly, else the longest known prompt the text contains."""
        text = prompt.strip()
        if text in self._references:
            return self._references[text]
        inside = [known for known in self._references if known and known in text]
        return self._references[max(inside, key=len)] if inside else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part)
    return ""


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _prompt_and_reference(row: dict) -> tuple[str, str]:
    """A dataset row's prompt (the gen_qa ``query``, else the last user turn) and its expected answer."""
    if "query" in row:
        return str(row["query"]), reference_text(row)
    messages = [m for m in row.get("messages") or [] if isinstance(m, dict)]
    if messages and messages[-1].get("role") == "assistant":  # a Converse SFT row: the answer is the last turn
        return _last_user_text(messages[:-1]), _text_of(messages[-1].get("content"))
    return _last_user_text(messages), reference_text(row)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))
