"""A user's own run input and datasets through the rehearsal, and a dry run that stops before any GPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from novactl.cli import main as novactl
from offline.synth import Synthesized
from rehearsal import __main__ as rehearsal_cli
from rehearsal.runner import Scenario, rehearse

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "stackoverflow"


def _prepared(folder: Path) -> Path:
    assert (
        novactl(["prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--id", "Id", "--out", str(folder)]) == 0
    )
    return folder


def test_a_dry_run_stops_after_preflight_before_any_training_job(app_synthesized: Synthesized, out_dir: Path) -> None:
    result = rehearse(Scenario(run_input={"dryRun": True}), synthesized=app_synthesized, out_dir=out_dir)
    assert result.status == "SUCCEEDED", (result.error, result.cause, result.function_errors)
    assert result.jobs == [] and result.rejected_job_requests == []
    assert result.models == [] and result.deployments == []
    assert result.run is not None and result.run["status"] == "DRY_RUN"
    assert result.run["preflight"]["cost"]["estimatedUsd"] > 0
    assert {s["status"] for s in result.run["stages"].values()} == {"SKIPPED"}
    entered = result.states_entered()
    assert "Preflight checks" in entered and "Is this a dry run?" in entered
    assert not any("job" in state.lower() for state in entered)
    (note,) = result.notifications
    assert "DRY RUN" in note["subject"]
    assert result.exit_code == 0


def test_the_users_own_input_is_served_from_the_files_of_the_same_name(
    app_synthesized: Synthesized, out_dir: Path, tmp_path: Path
) -> None:
    data = _prepared(tmp_path / "data")
    run_input = json.loads((EXAMPLE / "run.json").read_text())
    run_input["dryRun"] = True
    scenario = Scenario(replace_input=run_input, data_dir=data)
    result = rehearse(scenario, synthesized=app_synthesized, out_dir=out_dir)
    assert result.run is not None and result.run["status"] == "DRY_RUN", (result.error, result.cause)
    for name in ("sft", "rft", "eval"):
        recorded = result.run["plan"]["datasets"][name]
        assert recorded["uri"].endswith(f"/datasets/stackoverflow/{name}.jsonl")
        body = (data / f"{name}.jsonl").read_bytes()
        assert recorded["etag"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
        assert result.run["preflight"]["datasets"][name]["bytes"] == len(body)


def test_the_command_refuses_an_input_whose_dataset_file_is_not_in_the_folder(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"datasets": {"eval": "s3://bucket/datasets/eval.jsonl"}}))
    assert rehearsal_cli.main(["--input", str(path), "--data", str(tmp_path)]) == 64
    assert f"datasets.eval: s3://bucket/datasets/eval.jsonl is served from {tmp_path / 'eval.jsonl'}" in (
        capsys.readouterr().err
    )
    assert novactl(["rehearse", str(path), "--data", str(tmp_path)]) == 2
