"""Reward code the user writes (``lambdas/reward/custom/``) under the harness: scores, isolation, repair."""

from __future__ import annotations

import copy
import importlib
import io
import json
import logging
import sys
import textwrap
import threading
import time

import pytest

import lambdas.reward.custom as custom_package
from lambdas.reward.config import reward_function
from lambdas.reward.custom import custom_modules
from lambdas.reward.custom.short_answer import lambda_grader as short_answer_directly
from lambdas.reward.harness import PRINT_EXCERPT_CHARS
from lambdas.reward.presets import PresetError, list_graders, load_grader
from lambdas.reward.spec import SpecError

from .support import item, so_rows, write_jsonl


def published_samples() -> list[dict]:
    """Samples as the published reward functions receive them: reference at the top level or in metadata."""
    return [
        item("Answer: Paris", "Paris", item_id="q-1"),
        item("I think it is lyon, france", {"answer": "Paris, France"}, item_id="q-2"),
        {
            "id": "q-3",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Capital of Italy?"},
                {"role": "assistant", "content": [{"type": "text", "text": "<|begin_of_solution|>Rome"}]},
            ],
            "metadata": {"reference_answer": "Rome"},
        },
        item("Final answer: 42", None, item_id="q-4"),
        item("Answer: Madrid", "Madrid.", item_id=17),
    ]


def raising_sample() -> dict:
    """A rollout the engine can grade but the published-style code raises on: a turn after the assistant's."""
    sample = item("Answer: Paris", "Paris", item_id="q-tool")
    sample["messages"].append({"role": "tool", "content": "lookup done"})
    return sample


@pytest.fixture
def custom_dir(tmp_path, monkeypatch):
    """A temporary lambdas/reward/custom/ the tests may write modules into (the real one is left alone)."""
    monkeypatch.setattr(custom_package, "CUSTOM_DIR", tmp_path)
    monkeypatch.setattr(custom_package, "__path__", [str(tmp_path)])
    written: list[str] = []

    def write(name: str, source: str, requirements: str | None = None) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        if requirements is not None:
            (tmp_path / f"{name}.requirements.txt").write_text(requirements, encoding="utf-8")
        written.append(name)
        sys.modules.pop(f"lambdas.reward.custom.{name}", None)
        importlib.invalidate_caches()
        return name

    yield write
    for name in written:
        sys.modules.pop(f"lambdas.reward.custom.{name}", None)


def python_grader(module: str, **fields: object):
    return reward_function(spec_text=json.dumps({"type": "python", "module": module, **fields}))


def test_the_shipped_example_is_a_custom_module_and_a_grader_name() -> None:
    assert "short_answer" in custom_modules()
    assert "short_answer" in list_graders()
    preset = load_grader("short_answer")
    assert preset.spec == {"type": "python", "module": "short_answer"}
    assert preset.description.startswith("Short-answer reward")
    assert preset.version.startswith("sha256:")


def test_a_published_style_module_scores_identically_through_the_handler(load_handler, lambda_context) -> None:
    # Given the example module, dropped unchanged into lambdas/reward/custom/, deployed by its name
    handler = load_handler(GRADER_PRESET="short_answer")
    samples = published_samples()
    # When the same samples go through the Lambda handler and straight into the module's own function
    through_handler = handler.lambda_handler(copy.deepcopy(samples), lambda_context)
    direct = short_answer_directly(copy.deepcopy(samples))
    # Then the results are identical: ids, scores and metrics
    assert through_handler == direct
    assert [r["aggregate_reward_score"] for r in direct] == [1.0, 0.125, 1.0, 0.0, 1.0]


def test_an_item_that_makes_lambda_grader_raise_no_longer_fails_its_batch(load_handler, lambda_context) -> None:
    handler = load_handler(GRADER_PRESET="short_answer")
    samples = published_samples()
    batch = [*samples[:2], raising_sample(), *samples[2:]]
    with pytest.raises(AssertionError):  # the module on its own fails the whole batch
        short_answer_directly(copy.deepcopy(batch))
    results = handler.lambda_handler(copy.deepcopy(batch), lambda_context)
    # The culprit scores the minimum with a metric naming the error; every other item keeps its own score
    assert results[2] == {
        "id": "q-tool",
        "aggregate_reward_score": 0.0,
        "metrics_list": [{"name": "grader_error:AssertionError", "value": 1.0, "type": "Metric"}],
    }
    assert results[:2] + results[3:] == short_answer_directly(copy.deepcopy(samples))


def test_an_inline_spec_selects_a_module_too(load_handler, lambda_context) -> None:
    handler = load_handler(GRADER_SPEC=json.dumps({"type": "python", "module": "short_answer"}))
    assert handler.lambda_handler([item("Answer: Oslo", "Oslo")], lambda_context)[0]["aggregate_reward_score"] == 1.0


def test_grade_may_return_a_number_or_a_score_with_named_metrics(custom_dir) -> None:
    custom_dir(
        "by_item",
        """
        SCORE_RANGE = (-1, 1)

        def grade(sample):
            text = sample["messages"][-1]["content"]
            if text == "number":
                return 0.25
            if text == "boom":
                raise KeyError("no such field")
            return {"score": -0.5, "metrics": {"length": len(text), "flag": True, 3: 1.0}}
        """,
    )
    reward = python_grader("by_item")
    assert reward.score_range == (-1.0, 1.0)
    results = reward([item("number", item_id=1), item("boom", item_id=2), item("metrics", item_id=3)])
    assert results[0] == {"id": 1, "aggregate_reward_score": 0.25, "metrics_list": []}
    assert results[1]["aggregate_reward_score"] == -1.0
    assert results[1]["metrics_list"] == [{"name": "grader_error:KeyError", "value": 1.0, "type": "Metric"}]
    # The mapping's numeric entries become typed Metric entries; the others are dropped and counted
    assert results[2] == {
        "id": 3,
        "aggregate_reward_score": -0.5,
        "metrics_list": [
            {"name": "length", "value": 7.0, "type": "Metric"},
            {"name": "custom:dropped_metrics", "value": 2.0, "type": "Metric"},
        ],
    }


def test_every_result_is_checked_and_repaired(custom_dir) -> None:
    custom_dir(
        "sloppy",
        """
        def lambda_grader(samples):
            out = []
            for sample in samples:
                kind = sample["messages"][-1]["content"]
                result = {"id": "not-the-item-id", "aggregate_reward_score": 0.75, "metrics_list": [
                    {"name": "ok", "value": 1, "type": "Reward"},
                    {"name": "odd type", "value": 0.5, "type": "Bonus"},
                    {"name": "nan", "value": float("nan"), "type": "Metric"},
                    {"name": "text", "value": "high"},
                    "not an entry",
                ]}
                if kind == "nan":
                    result["aggregate_reward_score"] = float("nan")
                elif kind == "missing":
                    del result["aggregate_reward_score"]
                elif kind == "bool":
                    result["aggregate_reward_score"] = True
                elif kind == "huge":
                    result["aggregate_reward_score"] = 7
                out.append(result)
            return out
        """,
    )
    reward = python_grader("sloppy")
    kinds = ["fine", "nan", "missing", "bool", "huge"]
    results = reward([item(kind, item_id=f"id-{kind}") for kind in kinds])
    # Ids are the items' own, whatever the code returned
    assert [r["id"] for r in results] == [f"id-{kind}" for kind in kinds]
    fine = results[0]
    assert fine["aggregate_reward_score"] == 0.75
    assert fine["metrics_list"] == [
        {"name": "ok", "value": 1.0, "type": "Reward"},
        {"name": "odd type", "value": 0.5, "type": "Metric"},
        {"name": "nan", "value": 0.0, "type": "Metric"},
        {"name": "custom:dropped_metrics", "value": 2.0, "type": "Metric"},
        {"name": "nonfinite_metric", "value": 1.0, "type": "Metric"},
    ]
    for result in results[1:4]:  # NaN, missing or boolean score: the minimum and a metric
        assert result["aggregate_reward_score"] == 0.0
        assert result["metrics_list"] == [{"name": "grader_error:BadScore", "value": 1.0, "type": "Metric"}]
    assert results[4]["aggregate_reward_score"] == 1.0  # clamped into the declared range


def test_results_of_the_wrong_length_or_order_are_sorted_out(custom_dir) -> None:
    custom_dir(
        "shuffled",
        """
        def lambda_grader(samples):
            if len(samples) == 3:
                return [{"id": s["id"], "aggregate_reward_score": 0.1} for s in samples][:2]
            out = [{"id": s["id"], "aggregate_reward_score": len(s["messages"][-1]["content"]) / 10} for s in samples]
            return list(reversed(out))
        """,
    )
    reward = python_grader("shuffled")
    # Reversed results are put back in the items' order by id
    assert [r["aggregate_reward_score"] for r in reward([item("a", item_id=1), item("abcd", item_id=2)])] == [0.1, 0.4]
    # Too few results: each item is graded on its own
    three = reward([item("a", item_id=1), item("ab", item_id=2), item("abc", item_id=3)])
    assert [r["aggregate_reward_score"] for r in three] == [0.1, 0.2, pytest.approx(0.3)]


def test_prints_stay_out_of_the_logs_except_a_bounded_debug_excerpt(custom_dir, capsys, caplog) -> None:
    custom_dir(
        "chatty",
        """
        import sys

        def grade(sample):
            print("x" * 5000)
            print("to stderr", file=sys.stderr)
            return 1.0
        """,
    )
    reward = python_grader("chatty")
    with caplog.at_level(logging.DEBUG, logger="lambdas.reward.harness"):
        results = reward([item("a"), item("b")])
        assert results[0]["aggregate_reward_score"] == 1.0, results
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    (record,) = [r for r in caplog.records if r.name == "lambdas.reward.harness"]
    assert record.levelno == logging.DEBUG
    assert record.chars == 2 * (5001 + len("to stderr\n"))
    assert len(record.excerpt) == PRINT_EXCERPT_CHARS


def test_items_not_graded_by_the_deadline_score_the_minimum_and_the_batch_returns(custom_dir) -> None:
    release = threading.Event()
    custom_dir(
        "slow",
        """
        import threading

        RELEASE = threading.Event()

        def grade(sample):
            if sample["messages"][-1]["content"] == "slow":
                RELEASE.wait(30)
            return 1.0
        """,
    )
    reward = python_grader("slow")
    module = sys.modules["lambdas.reward.custom.slow"]
    try:
        results = reward.grade_batch(
            [item("fast", item_id=1), item("slow", item_id=2), item("fast", item_id=3)],
            deadline=time.monotonic() + 0.2,
        )
    finally:
        module.RELEASE.set()
        release.set()
    assert [r["aggregate_reward_score"] for r in results] == [1.0, 0.0, 0.0]
    assert results[1]["metrics_list"] == [{"name": "grader_error:DeadlineExceeded", "value": 1.0, "type": "Metric"}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines neither lambda_grader(samples) nor grade(sample)"),
        (
            "def grade(sample):\n    return 1\n\nraise RuntimeError('bad config')\n",
            "broken.py:4: RuntimeError: bad config",
        ),
        ("def grade(sample)\n    return 1\n", "broken.py:1"),
        ("SCORE_RANGE = (1, 0)\ndef grade(sample):\n    return 1\n", "max_score: must be greater than min_score"),
        ("SCORE_RANGE = 'wide'\ndef grade(sample):\n    return 1\n", "SCORE_RANGE must be a literal (low, high)"),
    ],
)
def test_a_broken_module_fails_at_load_naming_the_problem_and_where(custom_dir, source, message) -> None:
    custom_dir("broken", source)
    with pytest.raises(SpecError) as failure:
        python_grader("broken")
    assert message in str(failure.value)
    assert str(failure.value).startswith(("module:", "max_score:"))


def test_an_unknown_module_lists_the_modules_there_are() -> None:
    with pytest.raises(SpecError, match=r"module: no custom grader module 'nope' .*found: .*short_answer"):
        python_grader("nope")


def test_a_module_whose_declared_requirements_are_not_installed_here_is_checked_from_its_source(custom_dir) -> None:
    # Its requirements are installed only in its own function's layer: preflight and synthesis read the source
    custom_dir(
        "needs_package",
        """
        '''Scores with a package this machine does not have.'''
        import package_that_is_not_installed

        SCORE_RANGE = (0, 10)

        def lambda_grader(samples):
            return [package_that_is_not_installed.score(s) for s in samples]
        """,
        requirements="package-that-is-not-installed==1.0\n",
    )
    reward = python_grader("needs_package")
    assert reward.score_range == (0.0, 10.0)
    assert load_grader("needs_package").description == "Scores with a package this machine does not have."
    # Graded here, it reports the missing package on each item instead of failing the batch
    assert reward([item("a")])[0]["metrics_list"] == [
        {"name": "grader_error:ModuleNotFoundError", "value": 1.0, "type": "Metric"}
    ]


def test_without_declared_requirements_a_missing_package_fails_at_load(custom_dir) -> None:
    custom_dir("undeclared", "import package_that_is_not_installed\n\ndef grade(sample):\n    return 1\n")
    with pytest.raises(SpecError, match="undeclared.py:1: ModuleNotFoundError"):
        python_grader("undeclared")


def test_a_name_that_is_both_a_preset_and_a_module_is_refused(custom_dir) -> None:
    custom_dir("numeric", "def grade(sample):\n    return 1\n")
    with pytest.raises(PresetError, match="both a preset file and a custom module"):
        load_grader("numeric")


def test_the_cli_grades_and_verifies_with_a_custom_module(tmp_path) -> None:
    from lambdas.reward.cli import main

    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", published_samples())
    out = io.StringIO()
    assert main(["grade", "--preset", "short_answer", "--input", rollouts, "--json"], out=out) == 0
    assert [json.loads(line) for line in out.getvalue().splitlines()] == short_answer_directly(published_samples())
    rows = [{"messages": row["messages"], "reference_answer": f"city {index}"} for index, row in enumerate(so_rows())]
    dataset = write_jsonl(tmp_path / "rft.jsonl", rows)
    out = io.StringIO()
    code = main(["verify", "--preset", "short_answer", "--dataset", dataset], out=out)
    # The reference scores the maximum and every known hack (padding included) clearly less
    assert code == 0, out.getvalue()
    assert "verdict: PASS" in out.getvalue()


def test_the_readme_example_runs_unchanged_under_the_harness(custom_dir) -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    (source,) = [block for block in readme.split("```python\n")[1:] if "def lambda_grader" in block.split("```")[0]]
    custom_dir("readme_example", source.split("```")[0])
    samples = [item("Paris", "paris", item_id=1), item("Lyon", "Paris", item_id=2), item("x", None, item_id=3)]
    directly = importlib.import_module("lambdas.reward.custom.readme_example").lambda_grader(copy.deepcopy(samples))
    assert python_grader("readme_example")(copy.deepcopy(samples)) == directly
    assert [r["aggregate_reward_score"] for r in directly] == [1.0, 0.0, 0.0]
