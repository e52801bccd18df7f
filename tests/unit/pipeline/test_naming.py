"""Deterministic names: run ids, job names per attempt, Bedrock names and idempotency tokens."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.pipeline import naming

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BEDROCK_NAME = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
TOKEN = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,79}$")
PIPELINES = st.from_regex(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", fullmatch=True)
EXECUTION_NAMES = st.text(min_size=1, max_size=80)


def test_a_safe_execution_name_is_the_run_id() -> None:
    assert (
        naming.run_id_from_execution("5f0c2a1e-7b7c-4c39-9d55-0e0b4f7bd1a2") == "5f0c2a1e-7b7c-4c39-9d55-0e0b4f7bd1a2"
    )


def test_unsafe_execution_names_are_cleaned_and_stay_distinct() -> None:
    first, second = naming.run_id_from_execution("my run.1"), naming.run_id_from_execution("my run_1")
    assert first != second
    assert first.startswith("my-run-1-") and RUN_ID.match(first)


@given(EXECUTION_NAMES)
def test_every_run_id_is_safe_and_deterministic(name: str) -> None:
    run_id = naming.run_id_from_execution(name)
    assert RUN_ID.match(run_id), run_id
    assert naming.run_id_from_execution(name) == run_id


@given(PIPELINES, EXECUTION_NAMES, st.sampled_from(naming.STAGES), st.integers(1, 99))
def test_job_names_are_valid_sagemaker_names_under_the_pipeline_prefix(
    pipeline: str, execution: str, stage: str, attempt: int
) -> None:
    run_id = naming.run_id_from_execution(execution)
    name = naming.training_job_name(pipeline, run_id, stage, attempt)
    assert JOB_NAME.match(name) and len(name) <= 63, name
    assert name.startswith(f"{pipeline}-")  # the IAM policies are scoped to this prefix
    assert name.endswith(f"-{naming.JOB_STAGE_CODES[stage]}-a{attempt}")
    assert name == name.lower()


def test_each_attempt_and_stage_gets_a_new_job_name() -> None:
    names = {
        naming.training_job_name("nova", "run-1", stage, attempt) for stage in naming.STAGES for attempt in (1, 2, 3)
    }
    assert len(names) == 15
    assert naming.training_job_name("nova", "run-1", "sft", 1) == "nova-run-1-sft-a1"


def test_long_run_ids_are_shortened_with_a_hash_that_keeps_them_apart() -> None:
    long_a, long_b = "a" * 70 + "-first", "a" * 70 + "-second"
    name_a = naming.training_job_name("pipeline-with-a-long-name-abcdef", long_a, "finalEval", 10)
    name_b = naming.training_job_name("pipeline-with-a-long-name-abcdef", long_b, "finalEval", 10)
    assert name_a != name_b and len(name_a) <= 63 and len(name_b) <= 63


@given(PIPELINES, EXECUTION_NAMES)
def test_bedrock_names_and_tokens_match_the_api_patterns(pipeline: str, execution: str) -> None:
    run_id = naming.run_id_from_execution(execution)
    for name in (naming.bedrock_model_name(pipeline, run_id), naming.bedrock_deployment_name(pipeline, run_id)):
        assert BEDROCK_NAME.match(name) and len(name) <= 63, name
    for action in ("import", "deploy"):
        assert TOKEN.match(naming.client_request_token(pipeline, run_id, action))


def test_the_import_and_deploy_tokens_differ_but_are_stable_per_run() -> None:
    assert naming.client_request_token("nova", "run-1", "import") == "nova-run-1-import"
    assert naming.client_request_token("nova", "run-1", "deploy") == "nova-run-1-deploy"


def test_invalid_attempts_and_stages_are_rejected() -> None:
    with pytest.raises(ValueError):
        naming.training_job_name("nova", "run-1", "sft", 0)
    with pytest.raises(ValueError):
        naming.training_job_name("nova", "run-1", "dpo", 1)
