"""Integration tier: the rehearsal harness (rehearsal/) running state machines on moto.

The app is synthesized once per session; every scenario then runs the same
synthesized definition against fresh simulated AWS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rehearsal.cloud import Synthesized, synthesize


@pytest.fixture(scope="session")
def app_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "rehearsal"
