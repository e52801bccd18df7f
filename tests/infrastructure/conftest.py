"""The app's synthesis (once per process, shared with the integration tier) for every infrastructure test."""

from __future__ import annotations

import pytest

from offline.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synthesize()


@pytest.fixture(scope="session")
def template(synthesized: Synthesized):
    return synthesized.template
