"""Bucket layout and deterministic execution names (pure)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lambdas.trigger.layout import BucketLayout, ObjectKind, execution_name

LAYOUT = BucketLayout("nova")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def test_keys_are_classified_by_prefix() -> None:
    assert LAYOUT.classify("requests/nova/run.json") is ObjectKind.REQUEST
    assert LAYOUT.classify("requests/nova/team/run.json") is ObjectKind.REQUEST
    assert LAYOUT.classify("requests/nova/") is ObjectKind.IGNORED
    assert LAYOUT.classify("requests/rejected/nova/run.json") is ObjectKind.IGNORED
    assert LAYOUT.classify("requests/templates/nova.json") is ObjectKind.IGNORED
    assert LAYOUT.classify("requests/other/run.json") is ObjectKind.IGNORED
    assert LAYOUT.classify("datasets/nova/_READY") is ObjectKind.READY_MARKER
    assert LAYOUT.classify("datasets/nova/2025/06/_READY") is ObjectKind.READY_MARKER
    assert LAYOUT.classify("datasets/nova/2025/_READY.txt") is ObjectKind.IGNORED
    assert LAYOUT.classify("datasets/other/_READY") is ObjectKind.IGNORED


def test_rejected_and_error_keys_mirror_the_request_path() -> None:
    assert LAYOUT.rejected_key("requests/nova/a/b.json") == "requests/rejected/nova/a/b.json"
    assert LAYOUT.error_key("requests/rejected/nova/a/b.json") == "requests/rejected/nova/a/b.json.error.json"
    assert LAYOUT.error_key("ready-x-123") == "requests/rejected/nova/ready-x-123.error.json"


@given(
    key=st.text(min_size=1, max_size=300),
    version=st.one_of(st.none(), st.text(max_size=60)),
    kind=st.sampled_from(["request", "ready", "scheduled"]),
)
def test_execution_names_are_valid_and_deterministic(key: str, version: str | None, kind: str) -> None:
    name = execution_name(kind, key, version)
    assert NAME.match(name), name
    assert name == execution_name(kind, key, version)


@given(
    key=st.text(min_size=1, max_size=300),
    versions=st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=2, unique=True),
)
def test_different_versions_of_a_key_get_different_names(key: str, versions: list[str]) -> None:
    assert execution_name("request", key, versions[0]) != execution_name("request", key, versions[1])


def test_names_stay_readable() -> None:
    assert execution_name("request", "requests/nova/Weekly Retrain.json", "v1").startswith("request-Weekly-Retrain-")
