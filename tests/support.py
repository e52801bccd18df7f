"""Test doubles shared by every test tier and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class FakeLambdaContext:
    """The Lambda context attributes Powertools' ``inject_lambda_context`` reads.

    No ``get_remaining_time_in_millis``: handlers that derive a deadline from it see none.
    """

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    region: str = "us-east-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"
