"""The README's copy-paste examples stay valid: the console run input and the grader preset."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lambdas.pipeline.validation import input_problems
from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import list_presets, preset_from_document

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", README, flags=re.S)


def test_the_console_run_input_example_is_accepted_as_it_is() -> None:
    run_inputs = [b for b in _json_blocks() if '"datasets"' in b]
    assert run_inputs, "the README shows no run input"
    for block in run_inputs:
        payload = json.loads(block.replace("<data bucket>", "example-data-bucket"))
        assert input_problems(payload, data_bucket="example-data-bucket", graders=list_presets()) == []


def test_the_add_a_grader_example_is_a_valid_preset() -> None:
    presets = [b for b in _json_blocks() if '"spec"' in b]
    assert presets, "the README shows no grader preset"
    for block in presets:
        document = json.loads(re.sub(r"^\s+", "", block, flags=re.M).replace("<name>", "example"))
        preset = preset_from_document(document, "README")
        assert compile_spec(preset.spec, name=preset.name).score_range[1] > 0
