"""The functions' settings convention: one frozen pydantic model per function family, read from the
environment on first use (not at import), with every variable named by :mod:`lambdas.common.env_names`.

A model declares each field with ``Field(validation_alias=env_names.X)``; :func:`load_settings` validates
the environment and raises one :class:`ConfigurationError` naming every missing or malformed
variable (a deployment problem, not a run problem).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment problem)."""


class FunctionSettings(BaseModel):
    """Base of the settings models: immutable, unknown variables ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


SettingsT = TypeVar("SettingsT", bound=FunctionSettings)


def _variable_names(model: type[FunctionSettings], field: str) -> list[str]:
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [alias] if isinstance(alias, str) else [field]


def load_settings(model: type[SettingsT], environ: Mapping[str, str]) -> SettingsT:
    """``model`` validated from ``environ``; the error names every missing or malformed variable."""
    missing = []
    for field, info in model.model_fields.items():
        names = _variable_names(model, field)
        if info.is_required() and not any(name in environ for name in names):
            missing.append(names[0])
    if missing:
        raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
    try:
        return model.model_validate(dict(environ))
    except (ValidationError, ValueError) as error:
        raise ConfigurationError(f"invalid environment: {error}") from error
