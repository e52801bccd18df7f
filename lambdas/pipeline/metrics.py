"""The metrics table of a run: baseline / SFT / RFT side by side.

- ``baseline``: the baseline evaluation (base model);
- ``sft``: the SFT evaluation, or the final evaluation when RFT did not run (the final
  evaluation then judges the SFT checkpoint);
- ``rft``: the final evaluation when the candidate is an RFT checkpoint.

``candidate`` names the column of the model the gate judges and Bedrock imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdas.pipeline.jobs import candidate_checkpoint


def _metrics(stages: Mapping[str, Any], stage: str) -> dict[str, float] | None:
    record = stages.get(stage) or {}
    if record.get("status") != "SUCCEEDED":
        return None
    return dict(record.get("metrics") or {}) or None


def collect_metrics(plan: Mapping[str, Any], stages: Mapping[str, Any]) -> dict[str, Any]:
    """``{"metric", "candidate", "table": {"baseline", "sft", "rft"}}`` of the evaluations that ran."""
    candidate, _ = candidate_checkpoint(stages)
    final = _metrics(stages, "finalEval")
    if final is None:
        raise ValueError("the final evaluation reported no metrics")
    table = {
        "baseline": _metrics(stages, "baselineEval"),
        "sft": final if candidate == "sft" else _metrics(stages, "sftEval"),
        "rft": final if candidate == "rft" else None,
    }
    return {"metric": plan["gate"]["metric"], "candidate": candidate, "table": table}
