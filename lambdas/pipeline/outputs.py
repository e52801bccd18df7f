"""Reading what Nova jobs leave in ``<S3OutputPath>/<TrainingJobName>/output/output.tar.gz``.

- Training jobs: ``manifest.json`` at the archive root holds ``checkpoint_s3_bucket``, the
  full S3 URI of the checkpoint in an AWS-owned escrow bucket (Nova jobs may report no
  ``ModelArtifacts``, so the archive is the only reliable source).
- Evaluation jobs: ``results_*.json`` files hold aggregate metrics; their layout is not
  fully documented, so :func:`normalize_metrics` accepts

  * flat objects, ``{"exact_match": 0.8, "f1": 0.9}``;
  * lighteval-style objects, ``{"results": {"all": {"em": 0.8, ...}, "<task>": {...}}}``
    (``all`` wins; otherwise the task entries are merged);
  * lm-eval-style keys such as ``"exact_match,none"`` (the ``,filter`` suffix is dropped).

  Names are lower-cased, ``em`` becomes ``exact_match`` and ``qem`` ``quasi_exact_match``;
  ``*_stderr`` entries and anything that is not a finite number are left out.

The archive is read as a stream (``tarfile`` mode ``r|gz``): per-sample outputs of a
large evaluation never have to fit in memory.
"""

from __future__ import annotations

import json
import math
import posixpath
import tarfile
from collections.abc import Mapping
from typing import Any

from lambdas.common.aws_errors import is_missing
from lambdas.pipeline.s3uri import S3UriError, parse_s3_uri

MAX_JSON_MEMBER_BYTES = 8 << 20
_ALIASES = {"em": "exact_match", "qem": "quasi_exact_match"}


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


def _json_members(s3: Any, archive_uri: str, job_name: str, wanted: Any) -> list[tuple[str, Any]]:
    """``(member name, parsed JSON)`` of archive members whose name satisfies ``wanted(name)``."""
    body = _open_archive(s3, archive_uri, job_name)
    found: list[tuple[str, Any]] = []
    names: list[str] = []
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if len(names) < 20:
                    names.append(name)
                if not member.isfile() or not wanted(name):
                    continue
                if member.size > MAX_JSON_MEMBER_BYTES:
                    raise JobOutputError(f"{name} in {archive_uri} is larger than {MAX_JSON_MEMBER_BYTES} bytes")
                handle = archive.extractfile(member)
                try:
                    found.append((name, json.loads(handle.read() if handle else b"null")))
                except ValueError as error:
                    raise JobOutputError(f"{name} in {archive_uri} is not valid JSON: {error}") from error
    except (tarfile.TarError, OSError, EOFError) as error:
        raise JobOutputError(f"the output archive of job {job_name} ({archive_uri}) is unreadable: {error}") from error
    finally:
        body.close()
    if not found:
        listing = ", ".join(names) or "empty archive"
        raise JobOutputError(f"{archive_uri} of job {job_name} has no {wanted.__doc__} (members: {listing})")
    return found


def read_checkpoint(s3: Any, archive_uri: str, job_name: str) -> str:
    """The escrow checkpoint URI of a training job (``manifest.json`` -> ``checkpoint_s3_bucket``)."""

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
        parse_s3_uri(str(checkpoint))
    except S3UriError as error:
        raise JobOutputError(f"checkpoint_s3_bucket of job {job_name} is not an S3 URI: {error}") from error
    return str(checkpoint)


def metric_name(raw: str) -> str:
    """The normalized name of a reported metric (lower case, no ``,filter`` suffix, aliases resolved)."""
    name = raw.split(",", 1)[0].strip().lower()
    return _ALIASES.get(name, name)


def _finite(value: Any) -> bool:
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


def read_metrics(s3: Any, archive_uri: str, job_name: str) -> dict[str, float]:
    """Metrics of an evaluation job, merged over its ``results_*.json`` files (sorted by name)."""

    def wanted(name: str) -> bool:
        """results_*.json"""
        base = posixpath.basename(name)
        return base.startswith("results_") and base.endswith(".json")

    metrics: dict[str, float] = {}
    for _, document in sorted(_json_members(s3, archive_uri, job_name, wanted), key=lambda m: m[0]):
        metrics.update(normalize_metrics(document))
    if not metrics:
        raise JobOutputError(f"the results of evaluation job {job_name} hold no numeric metric")
    return metrics
