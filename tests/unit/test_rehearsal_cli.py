"""``python -m rehearsal``'s command line: help and bad settings never start a rehearsal."""

from __future__ import annotations

from pathlib import Path

import pytest

import rehearsal.__main__ as cli


@pytest.fixture(autouse=True)
def _no_rehearsal(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a rehearsal was started")

    monkeypatch.setattr(cli, "rehearse_runs", refuse)


def test_help_explains_every_setting_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REHEARSAL_OUT", str(tmp_path / "out"))
    with pytest.raises(SystemExit) as ended:
        cli.main(["--help"])
    assert ended.value.code == 0
    text = capsys.readouterr().out
    settings = ("--fail-at", "REHEARSAL_FAIL_AT", "REHEARSAL_GPU_QUOTA", "REHEARSAL_RUNS", "--runs", "Exit status")
    for setting in (*settings, "--platform", "REHEARSAL_PLATFORM"):
        assert setting in text
    assert not (tmp_path / "out").exists()


def test_an_unknown_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(["--bogus"])
    assert ended.value.code == 2 and "--bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--fail-at", "nope"],
        ["--fail-eval-of", "nope"],
        ["--gpu-quota", "four"],
        ["--runs", "0"],
        ["--runs", "two"],
        ["--platform", "hyperpod"],
    ],
    ids=str,
)
def test_a_setting_it_cannot_use_exits_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 64
    assert repr(argv[1]) in capsys.readouterr().err


def test_an_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHEARSAL_FAIL_AT", "rft")
    assert cli._arguments(["--fail-at", "sft"]).fail_at == "sft"
    assert cli._arguments([]).fail_at == "rft"


def test_the_bedrock_road_sets_the_run_inputs_platform_and_the_default_leaves_the_input_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list] = []

    def record(scenarios: list, **kwargs: object) -> list:
        started.append(scenarios)
        raise SystemExit(0)

    monkeypatch.setattr(cli, "rehearse_runs", record)
    monkeypatch.setattr(cli, "synthesize", lambda **kwargs: None)
    monkeypatch.setenv("REHEARSAL_PLATFORM", "bedrock")
    with pytest.raises(SystemExit):
        cli.main(["--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        cli.main(["--out", str(tmp_path), "--platform", "sagemaker"])
    assert [scenarios[-1].platform for scenarios in started] == ["bedrock", None]
