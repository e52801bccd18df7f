"""The Bedrock runtime client for LLM judges, created on first use.

boto3 is imported here and only when a judge grades its first batch, so graders
that never call Bedrock keep the reward Lambda's cold start small.
"""

from __future__ import annotations

from typing import Any


def bedrock_runtime_client(
    *,
    region: str | None,
    read_timeout_s: float,
    connect_timeout_s: float,
    max_attempts: int,
    max_pool_connections: int,
) -> Any:
    """A ``bedrock-runtime`` client whose timeouts and retries bound each judge call."""
    import boto3
    from botocore.config import Config

    config = Config(
        read_timeout=read_timeout_s,
        connect_timeout=connect_timeout_s,
        # total_max_attempts counts the first call; botocore's "max_attempts" would count only retries.
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        # One connection per worker thread, or calls queue for a free connection.
        max_pool_connections=max_pool_connections,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)
