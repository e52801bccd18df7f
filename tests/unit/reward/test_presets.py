"""Shipped presets: well-formed documents that compile (the CDK app deploys one function per file)."""

from __future__ import annotations

import json

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import PRESETS_DIR, PresetError, list_presets, load_preset, spec_from_text

REQUIRED = {"classification", "numeric", "tool-calling"}


def test_the_required_presets_are_shipped():
    assert set(list_presets()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(p.stem for p in PRESETS_DIR.glob("*.json")))
def test_each_preset_file_is_complete_and_compiles(name):
    document = json.loads((PRESETS_DIR / f"{name}.json").read_text())
    assert set(document) == {"name", "version", "description", "spec"}
    preset = load_preset(name)
    assert preset.name == name and preset.version and preset.description
    reward = compile_spec(preset.spec, name=preset.name)
    low, high = reward.score_range
    assert low < high
    # No preset calls Bedrock: the deployed reward functions are not granted bedrock:InvokeModel.
    assert "llm_judge" not in json.dumps(preset.spec)


def test_preset_types_match_their_case_studies():
    assert load_preset("classification").spec["labels"] == ["HQ", "LQ_EDIT", "LQ_CLOSE"]
    assert (load_preset("classification").spec["correct"], load_preset("classification").spec["incorrect"]) == (1, -1)
    assert load_preset("numeric").spec["type"] == "numeric"
    assert load_preset("tool-calling").spec["type"] == "tool_call"


def test_a_preset_whose_name_does_not_match_its_file_is_rejected(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps({"name": "b", "version": "1", "description": "d", "spec": {"type": "text_similarity"}})
    )
    with pytest.raises(PresetError, match="does not match"):
        load_preset("a", presets_dir=tmp_path)


def test_a_preset_missing_fields_is_rejected(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"name": "a", "spec": {}}))
    with pytest.raises(PresetError, match="missing version, description"):
        load_preset("a", presets_dir=tmp_path)


def test_spec_text_accepts_bare_specs_and_preset_documents():
    assert spec_from_text('{"type": "numeric"}') == (None, {"type": "numeric"})
    assert spec_from_text('{"name": "n", "version": "1", "description": "d", "spec": {"type": "numeric"}}') == (
        "n",
        {"type": "numeric"},
    )
