"""novactl prepare and validate, offline: the Stack Overflow-style CSV of examples/stackoverflow to checked datasets."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest

from lambdas.pipeline import datasets as dataset_checks
from novactl.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from novactl.prepare import SFT_SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "stackoverflow"


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _questions() -> int:
    """The example CSV's rows, read with the csv module (bodies span several lines)."""
    with (EXAMPLE / "questions.csv").open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    code, text = _run(
        "prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--id", "Id", "--out", str(tmp_path)
    )
    assert code == EXIT_OK, text
    assert "WARNING" not in text and "PROBLEM" not in text, text
    return tmp_path


def test_prepare_turns_the_stackoverflow_csv_into_three_valid_datasets(prepared: Path) -> None:
    kinds = {"sft": "sft", "rft": "rft", "eval": "gen_qa"}
    for name, kind in kinds.items():
        report = dataset_checks.validate_stream(io.BytesIO((prepared / f"{name}.jsonl").read_bytes()), kind)
        assert report.error_count == 0 and report.rows >= report.min_rows, (name, report.problems())
    sft = _rows(prepared / "sft.jsonl")
    assert {row["schemaVersion"] for row in sft} == {SFT_SCHEMA_VERSION}
    assert all(row["messages"][-1]["role"] == "assistant" for row in sft)
    labels = {row["reference_answer"] for row in _rows(prepared / "rft.jsonl")}
    assert labels <= {"HQ", "LQ_EDIT", "LQ_CLOSE"} and len(labels) > 1
    first = _rows(prepared / "eval.jsonl")[0]
    assert first["query"].startswith("Title: ") and "\nBody: " in first["query"]
    total = sum(len(_rows(prepared / f"{n}.jsonl")) for n in kinds)
    assert total == _questions()  # every row of the CSV, multi-line bodies included, lands in exactly one file
    assert any("\n" in row["messages"][0]["content"][0]["text"].split("\nBody: ", 1)[1] for row in sft)


def test_the_example_holds_a_global_batch_of_rows_for_each_training_job_of_the_default_recipes(
    prepared: Path,
) -> None:
    for name, batch in (("sft", 32), ("rft", 64)):  # Nova 2 Lite base recipes' global_batch_size
        assert len(_rows(prepared / f"{name}.jsonl")) >= batch, name


def test_prepare_splits_by_ratio_and_the_seed_decides_which_rows(tmp_path: Path) -> None:
    def split(seed: int, out: str) -> list[str]:
        code, _ = _run(
            "prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--id", "Id",
            "--split", "1,1,1", "--seed", str(seed), "--out", str(tmp_path / out),
        )  # fmt: skip
        assert code == EXIT_OK
        return [row["id"] for row in _rows(tmp_path / out / "rft.jsonl")]

    assert len(split(1, "a")) == round(_questions() / 3)
    assert split(1, "a") == split(1, "b")
    assert split(1, "a") != split(2, "c")


def test_prepare_names_the_file_line_and_column_of_a_bad_mapping(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _ = _run("prepare", str(EXAMPLE / "questions.csv"), "--query", "Question", "--response", "Y")
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "questions.csv, line 1 (the header)" in err and "'Question'" in err and "'Title'" in err


def test_a_query_template_joins_columns_and_a_typed_backslash_n_is_a_line_break(tmp_path: Path) -> None:
    code, _ = _run(
        "prepare", str(EXAMPLE / "questions.csv"), "--query", r"{Title}\n{Body}", "--response", "Y",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == EXIT_OK
    row = _rows(tmp_path / "eval.jsonl")[0]
    title, body = row["query"].split("\n", 1)
    assert title and body and "{" not in row["query"] and "system" not in row


def test_prepare_names_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes("Title,Body,Y\nCaf\u00e9,question,HQ\n".encode("latin-1"))
    assert _run("prepare", str(source), "--stackoverflow", "--out", str(tmp_path))[0] == EXIT_USAGE
    assert f"{source}: not UTF-8 text" in capsys.readouterr().err


def test_prepare_reports_an_empty_answer_and_an_evaluation_prompt_seen_in_training(tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    rows = [{"q": f"question {i}", "a": "yes" if i % 2 else "no"} for i in range(30)]
    rows[4]["a"] = " "
    rows += [{"q": "question 7", "a": "yes"}] * 3  # duplicates end up on both sides of the split
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, text = _run("prepare", str(source), "--query", "q", "--response", "a", "--out", str(tmp_path / "out"))
    assert code == EXIT_PROBLEMS
    assert f"{source}, line 5, field 'a': the response is empty" in text
    assert "also appears in the training data" in text


def test_validate_accepts_the_prepared_example_and_prints_the_estimates(prepared: Path) -> None:
    code, text = _run("validate", str(EXAMPLE / "run.json"), "--data", str(prepared))
    assert code == EXIT_OK, text
    assert "GPU cost: expected $" in text and "; worst case $" in text and "Duration of the jobs: expected " in text
    assert "Grader classification: smoke test passed" in text
    assert "no problems found" in text


def test_validate_prices_the_bedrock_example_and_names_bedrocks_record_floors(prepared: Path) -> None:
    code, text = _run("validate", str(EXAMPLE / "run.bedrock.json"), "--data", str(prepared))
    assert code == EXIT_PROBLEMS, text
    assert "Bedrock cost: expected $" in text and "GPU cost" not in text and " x ml.p5" not in text
    assert "SFT training " in text and " 1K tokens trained x $" in text and "RFT training 8 training hour x $" in text
    assert "note: rft_per_hour of nova-2-lite ($110.08) is not a published price" in text
    assert "- datasets.sft (sft): 80 valid rows; a Bedrock SFT job on nova-2-lite takes at least 200 records" in text
    assert "- datasets.rft (rft): 80 valid rows; a Bedrock RFT job on nova-2-lite takes at least 100 records" in text


def test_validate_lists_every_problem_of_the_input_and_the_data(prepared: Path, tmp_path: Path) -> None:
    run_input = json.loads((EXAMPLE / "run.json").read_text())
    run_input["gate"]["metrik"] = "f1"
    run_input["budget"] = {"maxUsd": -1}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(run_input))
    code, text = _run("validate", str(path), "--data", str(prepared))
    assert code == EXIT_PROBLEMS
    assert "gate.metrik: unknown key" in text and "budget.maxUsd:" in text

    del run_input["gate"]["metrik"], run_input["budget"]
    run_input["datasets"]["rft"] = "s3://bucket/datasets/stackoverflow/missing.jsonl"
    run_input["model"] = "nova-9-giant"
    path.write_text(json.dumps(run_input))
    code, text = _run("validate", str(path), "--data", str(prepared))
    assert code == EXIT_PROBLEMS
    assert "model: unknown model 'nova-9-giant'" in text
    assert "datasets.rft:" in text and "missing.jsonl does not exist" in text

    (prepared / "sft.jsonl").write_text('{"messages": []}\n')
    code, text = _run("validate", str(EXAMPLE / "run.json"), "--data", str(prepared))
    assert code == EXIT_PROBLEMS
    assert "datasets.sft (sft): line 1: messages: must be a list of at least two turns, user then assistant" in text
    assert (
        "datasets.sft (sft): 0 valid rows; the job's global_batch_size is 32, so the dataset needs at least 32" in text
    )


def test_prepare_warns_of_a_training_split_smaller_than_the_models_global_batch(tmp_path: Path) -> None:
    code, text = _run(
        "prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--split", "0.1,0.3,0.6",
        "--out", str(tmp_path / "lite"),
    )  # fmt: skip
    sft, rft = len(_rows(tmp_path / "lite" / "sft.jsonl")), len(_rows(tmp_path / "lite" / "rft.jsonl"))
    assert sft < 32 <= rft < 64, (sft, rft)
    assert code == EXIT_OK, text  # a warning: the run input may override global_batch_size
    assert f"sft.jsonl (sft): {sft} rows, fewer than the global_batch_size 32 of the nova-2-lite SFT recipe" in text
    assert f"rft.jsonl (rft): {rft} rows, fewer than the global_batch_size 64 of the nova-2-lite RFT recipe" in text

    code, text = _run(
        "prepare", str(EXAMPLE / "questions.csv"), "--stackoverflow", "--split", "0.1,0.3,0.6", "--model", "nova-micro",
        "--out", str(tmp_path / "micro"),
    )  # fmt: skip
    assert code == EXIT_OK, text
    assert "global_batch_size 64 of the nova-micro SFT recipe" in text and "RFT recipe" not in text


def test_validate_names_the_line_and_column_of_a_run_input_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "run.json"
    path.write_text('{\n  "datasets": {,\n}')
    code, _ = _run("validate", str(path))
    assert code == EXIT_USAGE
    assert f"{path}, line 2, column 16: not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    ["prepare", "validate", "rehearse", "start", "watch", "list", "show", "compare", "approve", "reject", "rollback",
     "cleanup"],
)  # fmt: skip
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    assert main([command, "--help"]) == EXIT_OK
    assert f"usage: novactl {command}" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error() -> None:
    assert main(["deploy-everything"]) == EXIT_USAGE


def test_every_novactl_command_the_readme_shows_is_accepted_by_the_parser() -> None:
    import re
    import shlex

    from novactl.cli import parser

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [line.split("#")[0] for block in blocks for line in block.splitlines() if line.startswith("novactl ")]
    assert len(commands) >= 8, commands
    for command in commands:
        args = parser().parse_args(shlex.split(command)[1:])
        assert callable(args.handler), command


def test_the_example_csv_is_what_its_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", EXAMPLE / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.main(["--out", str(tmp_path / "questions.csv")]) == 0
    assert (tmp_path / "questions.csv").read_bytes() == (EXAMPLE / "questions.csv").read_bytes()
    labels = [row["Y"] for row in csv.DictReader(io.StringIO((EXAMPLE / "questions.csv").read_text()))]
    assert {label: labels.count(label) for label in set(labels)} == {"HQ": 67, "LQ_EDIT": 67, "LQ_CLOSE": 66}


def test_validate_prints_the_expected_duration_and_cost_preflight_records(tmp_path: Path) -> None:
    """With enough rows for every job, validate shows preflight's per-job estimate, the expected cost beside
    the worst case, and the expected duration of the phases (longest job of each, one after another)."""
    from lambdas.pipeline import preflight
    from novactl import check

    with (EXAMPLE / "questions.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    with (tmp_path / "many.csv").open("w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=list(rows[0]))
        writer.writeheader()
        for index in range(400):
            row = rows[index % len(rows)]
            writer.writerow({**row, "Id": str(90000 + index), "Title": f"{row['Title']} (case {index})"})
    code, text = _run("prepare", str(tmp_path / "many.csv"), "--stackoverflow", "--id", "Id", "--out", str(tmp_path))
    assert code == EXIT_OK, text

    code, text = _run("validate", str(EXAMPLE / "run.json"), "--data", str(tmp_path))

    assert code == EXIT_OK, text
    checked = check.validate(json.loads((EXAMPLE / "run.json").read_text()), objects=check.LocalObjects(tmp_path))
    assert checked.plan is not None and checked.summary is not None
    cost = checked.summary.cost
    assert cost.expectedUsd is not None and cost.expectedUsd < cost.estimatedUsd
    # The figures are preflight's, with the row counts (without them the evaluations are not estimated).
    assert preflight.estimate_cost(checked.plan).expectedUsd is None
    assert f"GPU cost: expected ${cost.expectedUsd:,.2f}; worst case ${cost.estimatedUsd:,.2f}" in text
    for item in cost.items:
        assert f"expected {item.estimatedHours:g} h = ${item.expectedUsd:,.2f}; at most {item.maxHours:g} h" in text
    by_stage: dict[str, float] = {item.stage: item.estimatedHours or 0.0 for item in cost.items}
    phases = [("baselineEval", "sft"), ("sftEval", "rft"), ("finalEval",)]
    hours = sum(max(by_stage.get(stage, 0.0) for stage in phase) for phase in phases)
    assert f"Duration of the jobs: expected {hours:.1f} h; worst case" in text


def test_the_worst_case_duration_counts_only_jobs_that_have_a_maximum_runtime() -> None:
    from novactl import check
    from tests.unit.pipeline import samples

    def hours(plan, method: str) -> float:
        return plan.jobs.of(method).maxRuntimeSeconds / 3600

    sagemaker, bedrock = samples.plan(), samples.plan(platform="bedrock")
    # SageMaker: every job, per phase the longest (baseline evaluation beside SFT, SFT evaluation beside RFT, final)
    expected = (
        max(hours(sagemaker, "eval"), hours(sagemaker, "sft"))
        + max(hours(sagemaker, "eval"), hours(sagemaker, "rft"))
        + hours(sagemaker, "eval")
    )
    assert check.worst_case_hours(sagemaker) == expected
    assert check.worst_case_text(sagemaker).endswith("h (every job for its maximum runtime)")
    # Bedrock: the customization jobs only; its evaluations have no maximum runtime, and the text says so
    assert check.worst_case_hours(bedrock) == hours(bedrock, "sft") + hours(bedrock, "rft")
    assert "evaluations through Bedrock inference have none" in check.worst_case_text(bedrock)


def test_validate_names_a_missing_data_folder_and_where_each_missing_file_was_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "nowhere"
    code, _ = _run("validate", str(EXAMPLE / "run.json"), "--data", str(missing))
    assert code == EXIT_USAGE
    assert f"novactl validate: --data {missing}: no such folder" in capsys.readouterr().err

    code, text = _run("validate", str(EXAMPLE / "run.json"), "--data", str(tmp_path))
    assert code == EXIT_PROBLEMS
    key = json.loads((EXAMPLE / "run.json").read_text())["datasets"]["sft"].split("/", 3)[3]
    assert f"/{key} does not exist (looked for {tmp_path / 'sft.jsonl'})" in text
