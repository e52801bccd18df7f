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


ARN = "arn:aws:states:us-east-1:123456789012:execution:Pipeline:"


def _run_id(name: str, arn_prefix: str = ARN) -> str:
    return naming.run_id_from_execution(name, arn_prefix + name)


def test_the_run_id_is_the_execution_name_and_a_hash_of_the_execution_arn() -> None:
    name = "5f0c2a1e-7b7c-4c39-9d55-0e0b4f7bd1a2"
    run_id = _run_id(name)
    assert re.fullmatch(rf"{name}-[0-9a-f]{{8}}", run_id) and naming.is_run_id(run_id)
    # The same name in another state machine (another ARN) is another run.
    assert _run_id(name, "arn:aws:states:us-east-1:123456789012:execution:Other:") != run_id


def test_run_ids_cannot_collide() -> None:
    # A cleaned name cannot take the run id of an execution literally named like it ...
    cleaned = _run_id("my_run")
    assert cleaned.startswith("my-run-") and _run_id(cleaned) != cleaned
    assert _run_id("my run.1") != _run_id("my run_1")
    # ... and names differing only in case stay apart in the (lower-case) job names.
    jobs = {naming.training_job_name("nova", _run_id(name), "sft", 1) for name in ("Run-A", "run-a")}
    assert len(jobs) == 2


def test_is_run_id_accepts_only_the_form_of_run_ids() -> None:
    assert naming.is_run_id(_run_id("anything at all"))
    for text in ("run-1", "", "-0123abcd", "a" * 80 + "-0123abcd", "run_1-0123abcd", "run-0123ABCD"):
        assert not naming.is_run_id(text), text


@given(EXECUTION_NAMES)
def test_every_run_id_is_safe_and_deterministic(name: str) -> None:
    run_id = _run_id(name)
    assert RUN_ID.match(run_id) and len(run_id) <= naming.MAX_RUN_ID, run_id
    assert naming.is_run_id(run_id)
    assert _run_id(name) == run_id


@given(PIPELINES, EXECUTION_NAMES, st.sampled_from(naming.STAGES), st.integers(1, 99))
def test_job_names_are_valid_sagemaker_names_under_the_pipeline_prefix(
    pipeline: str, execution: str, stage: str, attempt: int
) -> None:
    run_id = _run_id(execution)
    name = naming.training_job_name(pipeline, run_id, stage, attempt)
    assert JOB_NAME.match(name) and len(name) <= 63, name
    assert name.startswith(f"{pipeline}-")  # the IAM policies are scoped to this prefix
    assert name.endswith(f"-{naming.JOB_STAGE_CODES[stage]}-a{attempt}")
    assert name == name.lower()


def test_each_attempt_and_stage_gets_a_new_job_name() -> None:
    names = {
        naming.training_job_name("nova", "run-1-0b9d6cbe", stage, attempt)
        for stage in naming.STAGES
        for attempt in (1, 2, 3)
    }
    assert len(names) == 15
    assert naming.training_job_name("nova", "run-1-0b9d6cbe", "sft", 1) == "nova-run-1-0b9d6cbe-sft-a1"


def test_long_run_ids_are_shortened_with_a_hash_that_keeps_them_apart() -> None:
    long_a, long_b = "a" * 70 + "-first", "a" * 70 + "-second"
    name_a = naming.training_job_name("pipeline-with-a-long-name-abcdef", long_a, "finalEval", 10)
    name_b = naming.training_job_name("pipeline-with-a-long-name-abcdef", long_b, "finalEval", 10)
    assert name_a != name_b and len(name_a) <= 63 and len(name_b) <= 63


@given(PIPELINES, EXECUTION_NAMES)
def test_bedrock_names_and_tokens_match_the_api_patterns(pipeline: str, execution: str) -> None:
    run_id = _run_id(execution)
    for name in (naming.bedrock_model_name(pipeline, run_id), naming.bedrock_deployment_name(pipeline, run_id)):
        assert BEDROCK_NAME.match(name) and len(name) <= 63, name
    for action in ("import", "deploy"):
        assert TOKEN.match(naming.client_request_token(pipeline, run_id, action))


def test_the_import_and_deploy_tokens_differ_but_are_stable_per_run() -> None:
    assert naming.client_request_token("nova", "run-1-0b9d6cbe", "import") == "nova-run-1-0b9d6cbe-import"
    assert naming.client_request_token("nova", "run-1-0b9d6cbe", "deploy") == "nova-run-1-0b9d6cbe-deploy"


def test_invalid_attempts_and_stages_are_rejected() -> None:
    with pytest.raises(ValueError):
        naming.training_job_name("nova", "run-1-0b9d6cbe", "sft", 0)
    with pytest.raises(ValueError):
        naming.training_job_name("nova", "run-1-0b9d6cbe", "dpo", 1)
