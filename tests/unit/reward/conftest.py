"""Fixtures for the reward service tests: a fake Lambda context, metrics reset, handler loading."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider import cold_start

from offline.lambda_context import FakeLambdaContext

HANDLER_MODULE = "lambdas.reward.handler"


CONTEXT = FakeLambdaContext("SageMakerRewardTest", aws_request_id="52fdfc07-2182-154f-163f-5f0f9a621d72")


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return CONTEXT


@pytest.fixture(autouse=True)
def reset_metrics():
    """Powertools keeps metrics and the cold-start flag in module state: start every test clean."""
    metrics = Metrics(namespace="NovaCustomization")
    metrics.clear_metrics()
    cold_start.reset_cold_start_flag()
    yield
    metrics.clear_metrics()


@pytest.fixture
def load_handler(monkeypatch) -> Iterator[Callable[..., object]]:
    """Import the handler module afresh with the given environment (it reads it at import)."""

    def load(**environment: str):
        monkeypatch.delenv("GRADER_SPEC", raising=False)
        monkeypatch.delenv("GRADER_PRESET", raising=False)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop(HANDLER_MODULE, None)
        return importlib.import_module(HANDLER_MODULE)

    yield load
    sys.modules.pop(HANDLER_MODULE, None)
