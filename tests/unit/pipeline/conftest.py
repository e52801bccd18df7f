"""Shared fixtures of the pipeline's unit tests: environment, moto S3, sample plans and datasets."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.pipeline.policy import RunPolicy
from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.faults import Durations, Faults
from rehearsal.simulators.routing import routed
from tests.unit.pipeline import samples

REGION = "us-east-1"
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def account(aws: None) -> Iterator[tuple[BedrockSimulator, Any]]:
    """The rehearsal's Bedrock simulator behind a real boto3 client (requests checked against the botocore
    service model), on a simulated clock."""
    simulator = BedrockSimulator(
        account=samples.ACCOUNT,
        region=REGION,
        epoch=EPOCH,
        faults=Faults(),
        durations=Durations(),
        checkpoints={},
    )
    with routed({"bedrock": simulator}), clock.using(clock.Lane(EPOCH)):
        yield simulator, boto3.client("bedrock", region_name=REGION)


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    for bucket in (samples.DATA_BUCKET, samples.ARTIFACTS_BUCKET):
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def datasets(s3: Any) -> dict[str, str]:
    """The three sample datasets uploaded to the data bucket; name -> URI."""
    uris = {}
    for name, rows in (("sft", samples.sft_rows()), ("rft", samples.rft_rows()), ("eval", samples.eval_rows())):
        key = f"datasets/{name}.jsonl"
        s3.put_object(Bucket=samples.DATA_BUCKET, Key=key, Body=samples.jsonl(rows))
        uris[name] = f"s3://{samples.DATA_BUCKET}/{key}"
    return uris


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "PIPELINE_NAME": samples.PIPELINE,
        "DATA_BUCKET_NAME": samples.DATA_BUCKET,
        "ARTIFACTS_BUCKET_NAME": samples.ARTIFACTS_BUCKET,
        "BEDROCK_IMPORT_ROLE_ARN": samples.IMPORT_ROLE_ARN,
        "MODEL_KMS_KEY_ARN": samples.KMS_KEY_ARN,
        "GRADER_FUNCTIONS": json.dumps(samples.GRADERS),
        # No gain floor: these tests chain stages without a baseline job; test_policy covers the floor.
        "RUN_POLICY": RunPolicy(minGainOverBaseline=0.0).to_env(),
        "AWS_REGION": REGION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def handlers(pipeline_env: dict) -> Iterator[Any]:
    """The handlers module with fresh environment and client caches."""
    module = importlib.import_module("lambdas.pipeline.handlers")
    module.environment.cache_clear()
    module.client.cache_clear()
    module.bedrock_client.cache_clear()
    yield module
    module.environment.cache_clear()
    module.client.cache_clear()
    module.bedrock_client.cache_clear()
