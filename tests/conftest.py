"""Shared test setup: offline AWS defaults for every tier."""

from __future__ import annotations

import os
from pathlib import Path

# Tests never reach AWS: fixed fake credentials and region, no instance metadata lookups.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "NovaCustomization")

# jsii, which aws_cdk spawns on import, runs on whichever `node` PATH finds first: the Node LTS that
# package.json pins (node_modules/.bin/node), as under make, also when pytest is started directly.
NODE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"
if (NODE_BIN / "node").exists():
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
