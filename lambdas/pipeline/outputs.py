"""Reading what Nova jobs leave in ``<S3OutputPath>/<TrainingJobName>/output/output.tar.gz``.

- Training jobs: ``manifest.json`` at the archive root holds ``checkpoint_s3_bucket``, the
  full S3 URI of the checkpoint in an AWS-owned escrow bucket (Nova jobs may report no
  ``ModelArtifacts``, so the archive is the only reliable source); it must be a training-job
  checkpoint of the job's account (:func:`lambdas.pipeline.s3uri.check_checkpoint_uri`).
- Evaluation jobs (:func:`read_evaluation`), two documented shapes, read together:

  * ``results_*.json`` files with aggregate metrics (``gen_qa``; the Nova Forge SDK looks for them for
    every task). Their layout is not fully documented, so :func:`normalize_metrics` accepts flat
    objects, ``{"exact_match": 0.8, "f1": 0.9}``; lighteval-style objects,
    ``{"results": {"all": {"em": 0.8, ...}, "<task>": {...}}}`` (``all`` wins; otherwise the task
    entries, such as ``custom|gen_qa_gen_qa|0``, are merged); lm-eval-style keys such as
    ``"exact_match,none"`` (the ``,filter`` suffix is dropped). Names are lower-cased, ``em`` becomes
    ``exact_match`` and ``qem`` ``quasi_exact_match``; ``*_stderr`` entries and anything that is not a
    finite number are left out.
  * per-sample ``rft_eval`` results: ``*.jsonl`` members whose first record carries
    ``aggregate_reward_score``, each line shaped like a reward Lambda response item,
    ``{"id", "aggregate_reward_score", "metrics_list": [{"name", "value", "type"}]}``. They give
    :data:`REWARD_METRIC` (the mean ``aggregate_reward_score``) and the mean of every ``metrics_list``
    name (spelled as the grader spells it), each with its sample count and standard error
    (:class:`MetricStats`). A malformed line fails the read, naming the member and the line.
    Other ``*.jsonl`` members (per-sample ``gen_qa`` outputs...) are not read.

  Several files are merged in name order, the per-sample averages last.

The archive is read as a stream (``tarfile`` mode ``r|gz``) and per-sample files line by line:
a large evaluation output never has to fit in memory.
"""

from __future__ import annotations

import json
import math
import posixpath
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from lambdas.common.aws_errors import is_missing
from lambdas.pipeline.s3uri import CheckpointUriError, check_checkpoint_uri, parse_s3_uri
from lambdas.pipeline.schema import MetricStats

MAX_JSON_MEMBER_BYTES = 8 << 20
_ALIASES = {"em": "exact_match", "qem": "quasi_exact_match"}
# The mean aggregate_reward_score of per-sample rft_eval results.
REWARD_METRIC = "aggregate_reward_score"


class JobOutputError(RuntimeError):
    """A job's output archive is missing or lacks what the next stage needs."""


def _open_archive(s3: Any, archive_uri: str, job_name: str) -> Any:
    bucket, key = parse_s3_uri(archive_uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as error:
        if is_missing(error):
            raise JobOutputError(f"job {job_name} wrote no output archive at {archive_uri}") from error
        raise


def _scan(s3: Any, archive_uri: str, job_name: str, visit: Callable[[str, Any, int], None]) -> list[str]:
    """Stream the archive, calling ``visit(name, handle, size)`` for every file member; the first members'
    names (for error messages)."""
    body = _open_archive(s3, archive_uri, job_name)
    names: list[str] = []
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if len(names) < 20:
                    names.append(name)
                if member.isfile():
                    visit(name, archive.extractfile(member), member.size)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise JobOutputError(f"the output archive of job {job_name} ({archive_uri}) is unreadable: {error}") from error
    finally:
        body.close()
    return names


def _parse_json_member(name: str, handle: Any, size: int, archive_uri: str) -> Any:
    if size > MAX_JSON_MEMBER_BYTES:
        raise JobOutputError(f"{name} in {archive_uri} is larger than {MAX_JSON_MEMBER_BYTES} bytes")
    try:
        return json.loads(handle.read() if handle else b"null")
    except ValueError as error:
        raise JobOutputError(f"{name} in {archive_uri} is not valid JSON: {error}") from error


def _json_members(s3: Any, archive_uri: str, job_name: str, wanted: Any) -> list[tuple[str, Any]]:
    """``(member name, parsed JSON)`` of archive members whose name satisfies ``wanted(name)``."""
    found: list[tuple[str, Any]] = []

    def visit(name: str, handle: Any, size: int) -> None:
        if wanted(name):
            found.append((name, _parse_json_member(name, handle, size, archive_uri)))

    names = _scan(s3, archive_uri, job_name, visit)
    if not found:
        listing = ", ".join(names) or "empty archive"
        raise JobOutputError(f"{archive_uri} of job {job_name} has no {wanted.__doc__} (members: {listing})")
    return found


def read_checkpoint(s3: Any, archive_uri: str, job_name: str, *, account: str) -> str:
    """The escrow checkpoint URI of a training job (``manifest.json`` -> ``checkpoint_s3_bucket``).

    The URI must be a training-job checkpoint of ``account`` (the account the job ran in), as
    :func:`lambdas.pipeline.s3uri.check_checkpoint_uri` defines it.
    """

    def wanted(name: str) -> bool:
        """manifest.json"""
        return posixpath.basename(name) == "manifest.json"

    members = sorted(_json_members(s3, archive_uri, job_name, wanted), key=lambda m: m[0].count("/"))
    name, manifest = members[0]
    checkpoint = manifest.get("checkpoint_s3_bucket") if isinstance(manifest, dict) else None
    if not checkpoint:
        keys = ", ".join(sorted(manifest)) if isinstance(manifest, dict) else type(manifest).__name__
        raise JobOutputError(f"{name} of job {job_name} has no checkpoint_s3_bucket (found: {keys})")
    try:
        check_checkpoint_uri(str(checkpoint), account)
    except CheckpointUriError as error:
        raise JobOutputError(
            f"{name} in {archive_uri}: checkpoint_s3_bucket of job {job_name} is not a usable checkpoint: {error}"
        ) from error
    return str(checkpoint)


def metric_name(raw: str) -> str:
    """The normalized name of a reported metric (lower case, no ``,filter`` suffix, aliases resolved)."""
    name = raw.split(",", 1)[0].strip().lower()
    return _ALIASES.get(name, name)


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _flat(entries: Mapping[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for raw, value in entries.items():
        name = metric_name(str(raw))
        if name.endswith("_stderr") or not _finite(value):
            continue
        metrics[name] = float(value)
    return metrics


def normalize_metrics(document: Any) -> dict[str, float]:
    """Aggregate metrics of one ``results_*.json`` document (see the module docstring)."""
    if not isinstance(document, dict):
        return {}
    results = document.get("results")
    if isinstance(results, dict):
        if isinstance(results.get("all"), dict):
            return _flat(results["all"])
        merged: dict[str, float] = _flat(results)
        for entry in results.values():
            if isinstance(entry, dict):
                merged.update(_flat(entry))
        return merged
    return _flat(document)


@dataclass
class RunningMean:
    """A running mean and variance (Welford), so per-sample files are averaged in one pass."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    def stats(self) -> MetricStats:
        stderr = math.sqrt(self.m2 / (self.n - 1) / self.n) if self.n > 1 else None
        return MetricStats(n=self.n, stderr=stderr)


@dataclass
class EvaluationResults:
    """The metrics of an evaluation job; ``stats`` for those averaged over per-sample results."""

    metrics: dict[str, float]
    stats: dict[str, MetricStats] = field(default_factory=dict)


def _is_results_file(name: str) -> bool:
    base = posixpath.basename(name)
    return base.startswith("results_") and base.endswith(".json")


def reward_record(record: Any) -> tuple[float, list[tuple[str, float]]] | str:
    """``(aggregate_reward_score, [(metric name, value)])`` of one per-sample record, or what is wrong."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    score = record.get("aggregate_reward_score")
    if not _finite(score):
        return f"aggregate_reward_score {score!r} is not a finite number"
    entries = record.get("metrics_list", [])
    if not isinstance(entries, list):
        return f"metrics_list is {type(entries).__name__}, not a list"
    values: list[tuple[str, float]] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            return f"metrics_list[{index}] has no name"
        if not _finite(value):
            return f"metrics_list[{index}] ({name}): value {value!r} is not a finite number"
        values.append((name.strip(), float(value)))
    return float(score), values


def _read_samples(name: str, handle: Any, archive_uri: str, means: dict[str, RunningMean]) -> bool:
    """Average a per-sample ``rft_eval`` file into ``means``; False when the file is not one."""
    per_sample = False
    for number, raw in enumerate(handle, start=1):
        if len(raw) > MAX_JSON_MEMBER_BYTES:
            raise JobOutputError(f"{name} in {archive_uri}, line {number}: longer than {MAX_JSON_MEMBER_BYTES} bytes")
        text = raw.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError as error:
            if not per_sample:
                return False
            raise JobOutputError(f"{name} in {archive_uri}, line {number}: not valid JSON ({error})") from error
        if not per_sample:
            if not (isinstance(record, dict) and "aggregate_reward_score" in record):
                return False
            per_sample = True
        parsed = reward_record(record)
        if isinstance(parsed, str):
            raise JobOutputError(f"{name} in {archive_uri}, line {number}: {parsed}")
        score, values = parsed
        means.setdefault(REWARD_METRIC, RunningMean()).add(score)
        for metric, value in values:
            means.setdefault(metric, RunningMean()).add(value)
    return per_sample


def read_evaluation(s3: Any, archive_uri: str, job_name: str) -> EvaluationResults:
    """Metrics of an evaluation job: ``results_*.json`` files and per-sample ``rft_eval`` JSONL (see the
    module docstring), merged in name order, the per-sample averages last."""
    documents: list[tuple[str, Any]] = []
    sample_files: list[tuple[str, dict[str, RunningMean]]] = []

    def visit(name: str, handle: Any, size: int) -> None:
        if _is_results_file(name):
            documents.append((name, _parse_json_member(name, handle, size, archive_uri)))
        elif name.endswith(".jsonl") and handle is not None:
            means: dict[str, RunningMean] = {}
            if _read_samples(name, handle, archive_uri, means):
                sample_files.append((name, means))

    names = _scan(s3, archive_uri, job_name, visit)
    if not documents and not sample_files:
        listing = ", ".join(names) or "empty archive"
        raise JobOutputError(
            f"{archive_uri} of job {job_name} has no results_*.json and no per-sample rft_eval results "
            f"(*.jsonl with aggregate_reward_score) (members: {listing})"
        )
    metrics: dict[str, float] = {}
    for _, document in sorted(documents, key=lambda d: d[0]):
        metrics.update(normalize_metrics(document))
    combined: dict[str, RunningMean] = {}
    for _, means in sorted(sample_files, key=lambda f: f[0]):
        for metric, mean in means.items():
            total = combined.setdefault(metric, RunningMean())
            _combine(total, mean)
    stats: dict[str, MetricStats] = {}
    for metric, mean in combined.items():
        metrics[metric] = mean.mean
        stats[metric] = mean.stats()
    if not metrics:
        raise JobOutputError(f"the results of evaluation job {job_name} hold no numeric metric")
    return EvaluationResults(metrics=metrics, stats=stats)


def _combine(total: RunningMean, part: RunningMean) -> None:
    """Merge the running statistics ``part`` into ``total`` (Chan et al.'s parallel update)."""
    n = total.n + part.n
    if part.n == 0:
        return
    delta = part.mean - total.mean
    total.m2 += part.m2 + delta * delta * total.n * part.n / n
    total.mean += delta * part.n / n
    total.n = n


def read_metrics(s3: Any, archive_uri: str, job_name: str) -> dict[str, float]:
    """The metrics of :func:`read_evaluation` alone."""
    return read_evaluation(s3, archive_uri, job_name).metrics
