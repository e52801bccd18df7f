"""Where run requests, templates and rejections live in the data bucket, and how executions are named.

One source of truth for the trigger Lambda and for the infrastructure (the
EventBridge rule pattern and the Lambda's S3 grants are built from it):

- ``requests/<pipeline>/<name>.json``: a run request (the console input JSON);
  each object version starts exactly one execution;
- ``requests/rejected/<pipeline>/<name>``: a request that could not start a run,
  moved here with ``<name>.error.json`` beside it explaining why;
- ``requests/templates/<pipeline>.json``: the stored request template, started
  by a ``_READY`` marker or by the retraining schedule;
- ``datasets/<pipeline>/.../_READY``: a marker written after a new dataset
  upload is complete; it starts a run of the template.

Pure: no AWS calls.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from lambdas.common.layout import DATASETS_PREFIX

REQUESTS_ROOT = "requests/"
REJECTED_ROOT = "requests/rejected/"
TEMPLATES_ROOT = "requests/templates/"
DATASETS_ROOT = DATASETS_PREFIX
READY_MARKER = "_READY"
ERROR_SUFFIX = ".error.json"
# Pipeline names that would make the request prefix collide with the reserved folders.
RESERVED_PIPELINE_NAMES = frozenset({"rejected", "templates"})

# Step Functions execution names: at most 80 characters of [A-Za-z0-9-_].
MAX_EXECUTION_NAME = 80
_HASH_CHARS = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


class ObjectKind(StrEnum):
    """What an object-created event in the data bucket means to the trigger."""

    REQUEST = "request"
    READY_MARKER = "ready-marker"
    IGNORED = "ignored"


@dataclass(frozen=True)
class BucketLayout:
    """Keys of one pipeline's requests, rejections, template and dataset markers."""

    pipeline: str

    @property
    def requests_prefix(self) -> str:
        return f"{REQUESTS_ROOT}{self.pipeline}/"

    @property
    def rejected_prefix(self) -> str:
        return f"{REJECTED_ROOT}{self.pipeline}/"

    @property
    def template_key(self) -> str:
        return f"{TEMPLATES_ROOT}{self.pipeline}.json"

    @property
    def datasets_prefix(self) -> str:
        return f"{DATASETS_ROOT}{self.pipeline}/"

    def classify(self, key: str) -> ObjectKind:
        """Requests and markers start runs; everything else (rejections, templates, data) is ignored."""
        if key.startswith(REJECTED_ROOT) or key.startswith(TEMPLATES_ROOT):
            return ObjectKind.IGNORED
        if key.startswith(self.requests_prefix) and not key.endswith("/"):
            return ObjectKind.REQUEST
        if key.startswith(self.datasets_prefix) and key.rsplit("/", 1)[-1] == READY_MARKER:
            return ObjectKind.READY_MARKER
        return ObjectKind.IGNORED

    def rejected_key(self, request_key: str) -> str:
        """``requests/<pipeline>/a/b.json`` -> ``requests/rejected/<pipeline>/a/b.json``."""
        return self.rejected_prefix + request_key.removeprefix(self.requests_prefix)

    def error_key(self, rejected_or_name: str) -> str:
        """The explanation written beside a rejected request (or named after a failed trigger)."""
        if rejected_or_name.startswith(self.rejected_prefix):
            return rejected_or_name + ERROR_SUFFIX
        return self.rejected_prefix + rejected_or_name + ERROR_SUFFIX


def execution_name(kind: str, key: str, version: str | None, *, label: str | None = None) -> str:
    """A deterministic execution name for one object version (or one scheduled firing).

    The same ``(key, version)`` always gives the same name, so a duplicate event
    cannot start a second execution (Step Functions refuses a reused name). The
    readable part is ``label`` (default: the key's file name); the hash of the
    full key and version keeps names unique.
    """
    digest = hashlib.sha256(f"{key}\n{version or 'null'}".encode()).hexdigest()[:_HASH_CHARS]
    stem = label if label is not None else key.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    readable = _UNSAFE.sub("-", f"{kind}-{stem}").strip("-")
    room = MAX_EXECUTION_NAME - _HASH_CHARS - 1
    return f"{readable[:room].rstrip('-')}-{digest}"
