"""The local CLI: grade rollouts, verify a grader, list presets."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.reward.cli import main

from .support import item, legal_rows, so_rows, write_jsonl

REPO_ROOT = Path(__file__).resolve().parents[3]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_grade_prints_per_item_scores_and_a_summary(tmp_path):
    rollouts = write_jsonl(
        tmp_path / "rollouts.jsonl", [item("HQ", "HQ", item_id="a"), item("LQ_EDIT", "HQ", item_id="b"), {"id": "c"}]
    )
    code, output = run("grade", "--preset", "classification", "--input", rollouts)
    assert code == 0
    lines = output.splitlines()
    assert lines[1].split()[:3] == ["1", "a", "1.000"]
    assert lines[2].split()[:3] == ["2", "b", "-1.000"]
    assert "malformed:no_messages=1" in lines[3]
    assert "count=3 mean=-0.667 min=-2.000 max=1.000 malformed=1" in lines[-1]


def test_grade_json_output_is_the_lambda_response(tmp_path, capsys):
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", [item("#### 16", "16", item_id=1)])
    code, output = run("grade", "--preset", "numeric", "--input", rollouts, "--json")
    assert code == 0
    assert json.loads(output)["aggregate_reward_score"] == 1.0
    assert "count=1" in capsys.readouterr().err


def test_grade_accepts_a_spec_file_and_treats_bad_lines_as_malformed(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"type": "numeric"}))
    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text(json.dumps(item("ANSWER: 2", 2)) + "\n{not json\n")
    code, output = run("grade", "--spec", str(spec), "--input", str(rollouts))
    assert code == 0
    assert "malformed:not_an_object=1" in output


def test_verify_passes_for_a_preset(tmp_path):
    dataset = write_jsonl(tmp_path / "rft.jsonl", legal_rows())
    code, output = run("verify", "--preset", "tool-calling", "--dataset", dataset, "--sample", "3")
    assert code == 0, output
    assert "rows 3" in output and output.rstrip().endswith("verdict: PASS")


def test_verify_exits_non_zero_for_a_hackable_spec(tmp_path):
    dataset = write_jsonl(tmp_path / "rft.jsonl", so_rows())
    hedging = json.dumps({"type": "label", "labels": ["HQ", "LQ_EDIT", "LQ_CLOSE"], "invalid": 1})
    code, output = run("verify", "--spec", hedging, "--dataset", dataset)
    assert code == 1
    assert "all_candidates" in output and "FAIL" in output
    assert "hackable or broken" in output


def test_a_bad_spec_exits_2_with_the_field_path(tmp_path, capsys):
    dataset = write_jsonl(tmp_path / "rft.jsonl", so_rows())
    code, _ = run("verify", "--spec", '{"type": "label", "labels": "HQ"}', "--dataset", dataset)
    assert code == 2
    assert "error: labels: must be a non-empty list of strings" in capsys.readouterr().err


def test_missing_input_file_exits_2(capsys):
    code, _ = run("grade", "--preset", "numeric", "--input", "/nonexistent/rollouts.jsonl")
    assert code == 2
    assert "No such file" in capsys.readouterr().err


def test_presets_lists_the_shipped_presets_and_the_custom_modules():
    code, output = run("presets")
    assert code == 0
    assert [line.split()[0] for line in output.splitlines()] == [
        "classification",
        "finqa",
        "legal-tool-calling",
        "numeric",
        "short_answer",
        "tool-calling",
    ]
    assert "short_answer (v" in output and ", python): " in output


def test_module_entry_point(tmp_path):
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", [item("HQ", "HQ")])
    done = subprocess.run(
        [sys.executable, "-m", "lambdas.reward", "grade", "--preset", "classification", "--input", rollouts],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "count=1 mean=1.000" in done.stdout


@pytest.mark.parametrize("argv", [[], ["grade", "--input", "x"], ["verify", "--preset", "numeric"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
