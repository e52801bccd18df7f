"""Grader presets shipped with the project (``presets/<name>.json``) and spec sources.

A preset file is ``{"name", "version", "description", "spec"}``; the CDK app
deploys one reward function per preset file, so adding a file adds a function.
A custom grader module (``lambdas/reward/custom/<module>.py``) is a grader too,
named by its module: :func:`list_graders` and :func:`load_grader` treat both alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.reward.spec import SpecError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
_PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class PresetError(ValueError):
    """A preset name that is unknown or a preset file that is not a valid preset."""


@dataclass(frozen=True)
class Preset:
    name: str
    version: str
    description: str
    spec: dict[str, Any]


def list_presets(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(path.stem for path in presets_dir.glob("*.json"))


def preset_from_document(document: Any, source: str) -> Preset:
    if not isinstance(document, dict):
        raise PresetError(f"{source}: a preset must be a JSON object")
    missing = [key for key in ("name", "version", "description", "spec") if key not in document]
    if missing:
        raise PresetError(f"{source}: missing {', '.join(missing)}")
    for key in ("name", "version", "description"):
        if not isinstance(document[key], str) or not document[key].strip():
            raise PresetError(f"{source}: {key} must be a non-empty string")
    if not isinstance(document["spec"], dict):
        raise PresetError(f"{source}: spec must be an object")
    return Preset(document["name"], document["version"], document["description"], document["spec"])


def load_preset(name: str, presets_dir: Path = PRESETS_DIR) -> Preset:
    """The preset called ``name``; :class:`PresetError` lists the shipped ones when it does not exist."""
    if not isinstance(name, str) or not _PRESET_NAME.match(name):
        raise PresetError(f"invalid preset name {name!r}")
    path = presets_dir / f"{name}.json"
    if not path.is_file():
        raise PresetError(f"unknown grader preset {name!r} (shipped: {', '.join(list_presets(presets_dir))})")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PresetError(f"{path.name}: not valid JSON: {exc}") from None
    preset = preset_from_document(document, path.name)
    if preset.name != name:
        raise PresetError(f"{path.name}: name {preset.name!r} does not match the file name")
    return preset


def spec_from_text(text: str, source: str = "spec") -> tuple[str | None, dict[str, Any]]:
    """``(name, spec)`` from JSON text holding either a bare spec or a preset-shaped document."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SpecError("", f"{source} is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "spec" in document and "type" not in document:
        preset = preset_from_document(document, source)
        return preset.name, preset.spec
    if not isinstance(document, dict):
        raise SpecError("", f"{source} must be a JSON object")
    return None, document


def custom_preset(module: str) -> Preset:
    """The preset a custom grader module stands for: ``{"type": "python", "module": module}``."""
    from lambdas.reward.harness import module_info

    info = module_info(module)  # read from the source: the module's own dependencies need not be installed here
    return Preset(module, info.version, info.description, {"type": "python", "module": module})


def list_graders(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """Every grader name a run or a deployment may use: the shipped presets and the custom modules, sorted."""
    from lambdas.reward.custom import custom_modules

    return sorted(set(list_presets(presets_dir)) | set(custom_modules()))


def load_grader(name: str, presets_dir: Path = PRESETS_DIR) -> Preset:
    """The preset or the custom module called ``name``; a name that is both is an error."""
    from lambdas.reward.custom import custom_modules

    if name not in custom_modules():
        return load_preset(name, presets_dir)
    if (presets_dir / f"{name}.json").is_file():
        raise PresetError(f"grader name {name!r} is both a preset file and a custom module: rename one")
    return custom_preset(name)
