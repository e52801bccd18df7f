"""One synthesis of the app shared by every infrastructure test."""

from __future__ import annotations

import pytest

from tests.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized):
    return synthesized.template
