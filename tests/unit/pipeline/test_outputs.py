"""Resolve checkpoint and read evaluation results from a job's output.tar.gz."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.pipeline.outputs import (
    JobOutputError,
    normalize_metrics,
    read_checkpoint,
    read_evaluation,
    read_metrics,
)
from offline.archive import put_archive
from tests.unit.pipeline import samples

ARCHIVE = (
    f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/jobs/sft/nova-run-1-0b9d6cbe-sft-a1/output/output.tar.gz"
)


def test_the_checkpoint_comes_from_the_manifest(s3: Any) -> None:
    manifest = {"checkpoint_s3_bucket": samples.SFT_CHECKPOINT, "other": 1}
    put_archive(s3, ARCHIVE, {"logs/train.log": b"...", "manifest.json": json.dumps(manifest).encode()})
    assert read_checkpoint(s3, ARCHIVE, "nova-run-1-0b9d6cbe-sft-a1", account=samples.ACCOUNT) == samples.SFT_CHECKPOINT


def test_a_manifest_under_dot_slash_is_found(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"./manifest.json": json.dumps({"checkpoint_s3_bucket": samples.SFT_CHECKPOINT}).encode()})
    assert read_checkpoint(s3, ARCHIVE, "job", account=samples.ACCOUNT) == samples.SFT_CHECKPOINT


def test_a_missing_archive_names_the_job(s3: Any) -> None:
    with pytest.raises(JobOutputError, match="job nova-run-1-0b9d6cbe-sft-a1 wrote no output archive at s3://"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-0b9d6cbe-sft-a1", account=samples.ACCOUNT)


def test_an_archive_without_a_manifest_lists_what_it_holds(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"logs/train.log": b"..."})
    with pytest.raises(JobOutputError, match=r"has no manifest.json \(members: logs/train.log\)"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-0b9d6cbe-sft-a1", account=samples.ACCOUNT)


def test_a_manifest_without_the_key_says_what_it_found(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"manifest.json": b'{"model_path": "x"}'})
    with pytest.raises(JobOutputError, match=r"has no checkpoint_s3_bucket \(found: model_path\)"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-0b9d6cbe-sft-a1", account=samples.ACCOUNT)


def test_a_corrupt_archive_is_reported(s3: Any) -> None:
    s3.put_object(Bucket=samples.ARTIFACTS_BUCKET, Key=ARCHIVE.split("/", 3)[3], Body=b"not a tarball")
    with pytest.raises(JobOutputError, match="unreadable"):
        read_checkpoint(s3, ARCHIVE, "job", account=samples.ACCOUNT)


@pytest.mark.parametrize(
    ("checkpoint", "reason"),
    [
        ("s3://customer-escrow-111122223333-smtj-0a1b2c3d/job/checkpoint/", "escrow bucket of account 111122223333"),
        (f"s3://customer-escrow-{samples.ACCOUNT}-hp-0a1b2c3d/job/checkpoint/", "HyperPod checkpoint"),
        ("s3://nova-artifacts-test/job/checkpoint/", "is not in an escrow bucket"),
        ("s3://customer-escrow-smtj-0a1b2c3d/job/checkpoint/", "not a well-formed escrow bucket name"),
        ("/opt/ml/checkpoints", "expected an s3://bucket/key URI"),
    ],
)
def test_a_manifest_checkpoint_that_is_not_this_accounts_training_job_checkpoint_names_the_archive(
    s3: Any, checkpoint: str, reason: str
) -> None:
    put_archive(s3, ARCHIVE, {"out/manifest.json": json.dumps({"checkpoint_s3_bucket": checkpoint}).encode()})
    with pytest.raises(JobOutputError) as caught:
        read_checkpoint(s3, ARCHIVE, "nova-run-1-0b9d6cbe-sft-a1", account=samples.ACCOUNT)
    message = str(caught.value)
    assert message.startswith(f"out/manifest.json in {ARCHIVE}: checkpoint_s3_bucket of job nova-run-1-0b9d6cbe-sft-a1")
    assert reason in message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"exact_match": 0.8, "f1": 0.9}, {"exact_match": 0.8, "f1": 0.9}),
        (
            {"results": {"all": {"em": 0.8, "qem": 0.85, "f1": 0.9, "em_stderr": 0.01}}},
            {"exact_match": 0.8, "quasi_exact_match": 0.85, "f1": 0.9},
        ),
        ({"results": {"custom|gen_qa|0": {"rouge1": 0.5, "bleu": 12.0}}}, {"rouge1": 0.5, "bleu": 12.0}),
        ({"results": {"gen_qa": {"exact_match,none": 0.7, "alias": "gen_qa"}}}, {"exact_match": 0.7}),
        ({"accuracy": True, "note": "x", "nan": float("nan")}, {}),
    ],
)
def test_metrics_of_every_known_results_layout_are_normalized(document: dict, expected: dict) -> None:
    assert normalize_metrics(document) == expected


def test_metrics_are_merged_over_every_results_file(s3: Any) -> None:
    put_archive(
        s3,
        ARCHIVE,
        {
            "eval_results/results_2026-11-21.json": json.dumps({"results": {"all": {"em": 0.7, "f1": 0.8}}}).encode(),
            "eval_results/results_zz.json": json.dumps({"bleu": 0.3}).encode(),
            "eval_results/details.jsonl": b"{}\n",
        },
    )
    assert read_metrics(s3, ARCHIVE, "eval-job") == {"exact_match": 0.7, "f1": 0.8, "bleu": 0.3}


def test_an_evaluation_without_results_is_an_error(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"details.jsonl": b"{}"})
    with pytest.raises(JobOutputError, match=r"has no results_\*.json and no per-sample rft_eval results"):
        read_metrics(s3, ARCHIVE, "eval-job")
    put_archive(s3, ARCHIVE, {"results_1.json": b'{"note": "no numbers"}'})
    with pytest.raises(JobOutputError, match="no numeric metric"):
        read_metrics(s3, ARCHIVE, "eval-job")


# -- evaluation outputs: gen_qa aggregates and rft_eval per-sample JSONL ------------------------------------


def _line(score: Any, *metrics: tuple[str, Any], sample: str = "q") -> str:
    return json.dumps(
        {
            "id": sample,
            "aggregate_reward_score": score,
            "metrics_list": [{"name": name, "value": value, "type": "Metric"} for name, value in metrics],
        }
    )


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("task_key", ["all", "custom|gen_qa_gen_qa|0"])
def test_gen_qa_results_are_read_in_both_layouts(s3: Any, task_key: str) -> None:
    document = {"results": {task_key: {"em": 0.7, "rougeL": 0.5, "em_stderr": 0.02}}}
    put_archive(
        s3,
        ARCHIVE,
        {
            "job/eval-result/results_2026-11-21T10-00-00.json": json.dumps(document).encode(),
            # the per-sample gen_qa outputs beside them are not reward records and are not read
            "job/eval-result/inference_output.jsonl": b'{"prompt": "q", "inference": "a", "gold": "a"}\n',
        },
    )
    results = read_evaluation(s3, ARCHIVE, "eval-job")
    assert results.metrics == {"exact_match": 0.7, "rougel": 0.5}
    assert results.stats == {}


def test_rft_eval_per_sample_rewards_are_averaged_with_n_and_standard_error(s3: Any) -> None:
    lines = [
        _line(1.0, ("answer", 1.0), ("format", 1.0)),
        _line(0.0, ("answer", 0.0), ("format", 1.0)),
        "",  # blank lines are skipped
        _line(1.0, ("answer", 1.0)),
        _line(1, ("answer", 1)),
    ]
    put_archive(s3, ARCHIVE, {"job/eval-result/rft_eval_results.jsonl": _jsonl(*lines)})
    results = read_evaluation(s3, ARCHIVE, "eval-job")
    assert results.metrics == {"aggregate_reward_score": 0.75, "answer": 0.75, "format": 1.0}
    reward = results.stats["aggregate_reward_score"]
    # sample variance of [1, 0, 1, 1] is 0.25, so the standard error is sqrt(0.25 / 4) = 0.25
    assert reward.n == 4 and reward.stderr == pytest.approx(0.25)
    assert results.stats["answer"].n == 4
    assert results.stats["format"].n == 2 and results.stats["format"].stderr == 0.0


def test_a_single_sample_has_no_standard_error(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"rewards.jsonl": _jsonl(_line(0.4))})
    results = read_evaluation(s3, ARCHIVE, "eval-job")
    assert results.metrics == {"aggregate_reward_score": 0.4}
    assert results.stats["aggregate_reward_score"].n == 1 and results.stats["aggregate_reward_score"].stderr is None


def test_per_sample_files_are_pooled_and_win_over_results_files(s3: Any) -> None:
    scores = [0.2, 0.9, 0.4, 1.0, 0.0, 0.7]
    put_archive(
        s3,
        ARCHIVE,
        {
            "eval/part-1.jsonl": _jsonl(*(_line(v, ("answer", v)) for v in scores[:2])),
            "eval/part-2.jsonl": _jsonl(*(_line(v, ("answer", v)) for v in scores[2:])),
            "eval/results_1.json": json.dumps({"aggregate_reward_score": 0.1, "accuracy": 0.6}).encode(),
        },
    )
    results = read_evaluation(s3, ARCHIVE, "eval-job")
    mean = sum(scores) / len(scores)
    stderr = (sum((v - mean) ** 2 for v in scores) / (len(scores) - 1) / len(scores)) ** 0.5
    assert results.metrics["aggregate_reward_score"] == pytest.approx(mean)
    assert results.metrics["answer"] == pytest.approx(mean)
    assert results.metrics["accuracy"] == 0.6  # the results file's own metrics are kept
    assert results.stats["aggregate_reward_score"].n == 6
    assert results.stats["aggregate_reward_score"].stderr == pytest.approx(stderr)
    assert read_metrics(s3, ARCHIVE, "eval-job") == results.metrics


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"aggregate_reward_score": 0.5, "metrics_list": [', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"id": "q", "metrics_list": []}', "aggregate_reward_score None is not a finite number"),
        ('{"aggregate_reward_score": NaN}', "aggregate_reward_score nan is not a finite number"),
        ('{"aggregate_reward_score": true}', "aggregate_reward_score True is not a finite number"),
        ('{"aggregate_reward_score": 1, "metrics_list": {"answer": 1}}', "metrics_list is dict, not a list"),
        ('{"aggregate_reward_score": 1, "metrics_list": [{"value": 1}]}', r"metrics_list\[0\] has no name"),
        (
            '{"aggregate_reward_score": 1, "metrics_list": [{"name": "answer", "value": "1"}]}',
            r"metrics_list\[0\] \(answer\): value '1' is not a finite number",
        ),
    ],
)
def test_a_bad_per_sample_line_names_the_file_and_the_line(s3: Any, bad_line: str, problem: str) -> None:
    member = "job/eval-result/rft_eval_results.jsonl"
    put_archive(s3, ARCHIVE, {member: _jsonl(_line(1.0), _line(0.0), bad_line)})
    with pytest.raises(JobOutputError, match=rf"{member} in s3://\S+, line 3: {problem}"):
        read_evaluation(s3, ARCHIVE, "eval-job")
