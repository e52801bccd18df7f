"""Synthesis gates: cdk-nag, cfn-lint, no network, no machine-specific output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from offline.synth import Synthesized

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).parent / "support"


def test_nag_gate_fails_synthesis_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    # Given the real app with one insecure bucket added
    from app import build_app

    app = build_app(outdir=str(tmp_path))
    stack = app.node.find_child("NovaCustomization")
    assert isinstance(stack, cdk.Stack)
    s3.CfnBucket(stack, "InsecureBucket")
    # When it is synthesized, then the AwsSolutions plugin stops synthesis and names the rule
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report and "InsecureBucket" in report


# The app as it synthesizes, and as it synthesizes once its definition runs the job stages on Bedrock (conftest.py).
APPS = pytest.mark.parametrize("app", ["synthesized", "bedrock_road"])


@APPS
def test_the_app_synthesizes_with_zero_unacknowledged_nag_findings(app: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(app)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    plugins = {r["pluginName"]: r for r in report["pluginReports"]}
    assert "AwsSolutions" in plugins, sorted(plugins)
    for name, plugin in plugins.items():
        assert plugin["conclusion"] == "success", (name, plugin["violations"])
        assert plugin["violations"] == [], name
    # every acknowledged finding says why
    acknowledged = plugins["AwsSolutions"]["suppressedViolations"]
    assert acknowledged and all(v["reason"].strip() for v in acknowledged)


@APPS
def test_cfn_lint_reports_no_errors(app: str, request: pytest.FixtureRequest) -> None:
    from cfnlint.api import lint_all

    synthesized: Synthesized = request.getfixturevalue(app)
    template_path = synthesized.outdir / "NovaCustomization.template.json"
    matches = lint_all(template_path.read_text())
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(f"{m.rule.id} {m.message} ({m.path})" for m in errors)


def test_synthesized_output_holds_no_machine_specific_paths(synthesized: Synthesized) -> None:
    forbidden = {str(REPO_ROOT), str(Path.home()), str(synthesized.outdir)}
    pattern = re.compile("|".join(re.escape(p) for p in sorted(forbidden, key=len, reverse=True)))
    checked = set()
    for path in synthesized.outdir.glob("*.json"):
        if path.name in {"tree.json", "validation-report.json"}:
            continue  # construct tree and nag report are local diagnostics, never deployed
        text = path.read_text()
        checked.add(path.name)
        match = pattern.search(text)
        assert match is None, f"{path.name} contains {match.group(0)!r}"
    # what is deployed: the template, the asset manifest and the definition asset
    assert {"manifest.json", "NovaCustomization.template.json", "NovaCustomization.assets.json"} <= checked
    assert any(name.startswith("asset.") for name in checked), sorted(checked)


def test_synthesis_makes_no_network_connection(tmp_path: Path) -> None:
    log = tmp_path / "network.log"
    log.touch()
    env = {
        **os.environ,
        "NETGUARD_LOG": str(log),
        "NODE_OPTIONS": f"--require {SUPPORT / 'netguard.js'}",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }
    result = subprocess.run(
        [sys.executable, str(SUPPORT / "synth_offline.py"), str(tmp_path / "out")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "NovaCustomization.template.json").exists()
    assert log.read_text() == ""
    # jsii ran on a supported Node: it prints an end-of-life banner (to stderr) on any other
    assert "end-of-life" not in result.stderr and "not supported" not in result.stderr, result.stderr[-3000:]


def test_node_on_path_is_the_lts_that_package_json_pins() -> None:
    # Given the Node version package.json pins (exactly, and the same in the lock file)
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["node"]
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/node"]["version"] == pinned
    assert re.fullmatch(r"22\.\d+\.\d+", pinned), f"node {pinned}: pin an exact 22.x LTS release"
    # When the tests (and so jsii during synthesis) look `node` up on PATH
    node = shutil.which("node")
    assert node is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    # Then they find that pinned release, not an end-of-life system Node
    assert version.strip() == f"v{pinned}", f"{node} is {version.strip()}"
