"""Placeholder: renders the run report (runs/<run-id>/report.html). Replaced by the full report."""

from __future__ import annotations

import html
import json


def render_report(run: dict) -> str:
    """A self-contained HTML page for one run record."""
    return "<!doctype html><html><body><pre>" + html.escape(json.dumps(run, indent=2, default=str)) + "</pre></body></html>"
