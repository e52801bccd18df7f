"""Choosing the reward function from configuration (the Lambda's environment, the CLI's flags).

``GRADER_SPEC`` holds an inline JSON spec (or a preset-shaped document);
``GRADER_PRESET`` names a shipped preset or a custom grader module. Exactly one must be set. Everything
is validated here, at cold start, so a bad spec fails the deployment's first
invocation loudly instead of mis-scoring rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lambdas.common import env_names
from lambdas.reward.engine import RewardFunction, compile_spec
from lambdas.reward.presets import load_grader, spec_from_text
from lambdas.reward.spec import SpecError


class ConfigError(ValueError):
    """Neither or both of GRADER_SPEC and GRADER_PRESET are set, or the preset does not exist."""


def reward_function(
    *,
    spec_text: str | None = None,
    preset: str | None = None,
    bedrock_client: Any = None,
    bedrock_client_factory: Callable[..., Any] | None = None,
) -> RewardFunction:
    """The compiled reward function for an inline spec (JSON text) or a preset name."""
    spec_text = (spec_text or "").strip() or None
    preset = (preset or "").strip() or None
    if spec_text and preset:
        raise ConfigError("set either GRADER_SPEC or GRADER_PRESET, not both")
    clients = {"bedrock_client": bedrock_client, "bedrock_client_factory": bedrock_client_factory}
    if preset:
        try:
            loaded = load_grader(preset)
        except ValueError as exc:
            raise ConfigError(f"GRADER_PRESET={preset}: {exc}") from None
        try:
            return compile_spec(loaded.spec, name=loaded.name, **clients)
        except SpecError as exc:
            raise SpecError(exc.path, f"{exc.message} (in preset {preset!r})") from None
    if not spec_text:
        raise ConfigError("set GRADER_SPEC (inline JSON spec) or GRADER_PRESET (a shipped preset name)")
    name, spec = spec_from_text(spec_text, "GRADER_SPEC")
    return compile_spec(spec, name=name, **clients)


def reward_function_from_env(environ: Mapping[str, str], **clients: Any) -> RewardFunction:
    """The reward function the environment selects (``GRADER_SPEC`` or ``GRADER_PRESET``)."""
    return reward_function(
        spec_text=environ.get(env_names.GRADER_SPEC), preset=environ.get(env_names.GRADER_PRESET), **clients
    )
