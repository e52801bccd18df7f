"""Resolve checkpoint and read evaluation results from a job's output.tar.gz."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.pipeline.outputs import JobOutputError, normalize_metrics, read_checkpoint, read_metrics
from offline.archive import put_archive
from tests.unit.pipeline import samples

ARCHIVE = f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1/jobs/sft/nova-run-1-sft-a1/output/output.tar.gz"


def test_the_checkpoint_comes_from_the_manifest(s3: Any) -> None:
    manifest = {"checkpoint_s3_bucket": samples.SFT_CHECKPOINT, "other": 1}
    put_archive(s3, ARCHIVE, {"logs/train.log": b"...", "manifest.json": json.dumps(manifest).encode()})
    assert read_checkpoint(s3, ARCHIVE, "nova-run-1-sft-a1") == samples.SFT_CHECKPOINT


def test_a_manifest_under_dot_slash_is_found(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"./manifest.json": json.dumps({"checkpoint_s3_bucket": samples.SFT_CHECKPOINT}).encode()})
    assert read_checkpoint(s3, ARCHIVE, "job") == samples.SFT_CHECKPOINT


def test_a_missing_archive_names_the_job(s3: Any) -> None:
    with pytest.raises(JobOutputError, match="job nova-run-1-sft-a1 wrote no output archive at s3://"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-sft-a1")


def test_an_archive_without_a_manifest_lists_what_it_holds(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"logs/train.log": b"..."})
    with pytest.raises(JobOutputError, match=r"has no manifest.json \(members: logs/train.log\)"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-sft-a1")


def test_a_manifest_without_the_key_says_what_it_found(s3: Any) -> None:
    put_archive(s3, ARCHIVE, {"manifest.json": b'{"model_path": "x"}'})
    with pytest.raises(JobOutputError, match=r"has no checkpoint_s3_bucket \(found: model_path\)"):
        read_checkpoint(s3, ARCHIVE, "nova-run-1-sft-a1")


def test_a_corrupt_archive_is_reported(s3: Any) -> None:
    s3.put_object(Bucket=samples.ARTIFACTS_BUCKET, Key=ARCHIVE.split("/", 3)[3], Body=b"not a tarball")
    with pytest.raises(JobOutputError, match="unreadable"):
        read_checkpoint(s3, ARCHIVE, "job")


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
    with pytest.raises(JobOutputError, match=r"has no results_\*.json"):
        read_metrics(s3, ARCHIVE, "eval-job")
    put_archive(s3, ARCHIVE, {"results_1.json": b'{"note": "no numbers"}'})
    with pytest.raises(JobOutputError, match="no numeric metric"):
        read_metrics(s3, ARCHIVE, "eval-job")
