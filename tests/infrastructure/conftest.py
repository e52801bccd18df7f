"""The app's synthesis (once per process, shared with the integration tier) for every infrastructure test, and
the app synthesized as it is once its definition runs the job stages on Bedrock (``bedrock_road``)."""

from __future__ import annotations

from typing import Any

import pytest

from offline.synth import Synthesized, synthesize, synthesize_into
from stepfunctions import pipeline as workflow
from stepfunctions.asl import LAMBDA_INVOKE


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synthesize()


@pytest.fixture(scope="session")
def template(synthesized: Synthesized):
    return synthesized.template


EVALUATE_ON_BEDROCK = workflow.Function(
    "EvaluateOnBedrock", "evaluate_on_bedrock", "Nova pipeline: evaluate a model through Bedrock inference", 900
)


@pytest.fixture(scope="session")
def bedrock_road(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app whose definition runs its job stages on Bedrock and evaluates through EvaluateOnBedrock."""
    real = workflow.task_integrations

    def with_bedrock_jobs(document: Any) -> dict[str, set[str]]:
        integrations = real(document)
        integrations.setdefault(workflow.BEDROCK_CUSTOMIZATION_JOB_SYNC, set())
        integrations.setdefault(LAMBDA_INVOKE, set()).add(EVALUATE_ON_BEDROCK.construct_id)
        return integrations

    functions = workflow.FUNCTIONS
    if all(f.construct_id != EVALUATE_ON_BEDROCK.construct_id for f in functions):
        functions = (*functions, EVALUATE_ON_BEDROCK)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("stacks.pipeline.task_integrations", with_bedrock_jobs)
        patch.setattr("stacks.pipeline.FUNCTIONS", functions)
        return synthesize_into(tmp_path_factory.mktemp("bedrock-road"))
