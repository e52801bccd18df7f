"""Integration tier: the rehearsal harness (rehearsal/) running state machines on moto.

The app is synthesized once per process (:func:`offline.synth.synthesize`); every
scenario then runs the same synthesized definition against fresh simulated AWS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def app_synthesized() -> Synthesized:
    return synthesize()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "rehearsal"
