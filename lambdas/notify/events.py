"""The EventBridge ``Step Functions Execution Status Change`` event the notify Lambda receives."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class ExecutionStatusDetail(BaseModel):
    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    start_date: int | None = Field(default=None, alias="startDate")
    stop_date: int | None = Field(default=None, alias="stopDate")
    input: str | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None

    def parsed(self, field: Literal["input", "output"]) -> object:
        """The execution input/output as JSON (``None`` when absent, truncated or not JSON)."""
        raw = getattr(self, field)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None


class ExecutionStatusChange(BaseModel):
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    source: Literal["aws.states"]
    region: str
    detail: ExecutionStatusDetail

    @property
    def run_id_from_output(self) -> str | None:
        """The run id a succeeded execution returns (``runId`` or ``plan.runId``), if any."""
        return run_id_in(self.detail.parsed("output"))


def run_id_in(state: object) -> str | None:
    """``runId`` or ``plan.runId`` of a state's JSON (the pipeline resolves it in "Validate run")."""
    if not isinstance(state, dict):
        return None
    for holder in (state, state.get("plan")):
        run_id = holder.get("runId") if isinstance(holder, dict) else None
        if isinstance(run_id, str) and run_id:
            return run_id
    return None
