"""The context object the Lambda runtime hands a handler, for calling handlers outside Lambda."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from offline import ACCOUNT, REGION


@dataclass
class FakeLambdaContext:
    """The attributes of the runtime's context object that the handlers and Powertools read.

    ``get_remaining_time_in_millis`` exists only when ``timeout_seconds`` is given (counting
    down from the context's creation): a handler that derives a deadline from it sees none
    otherwise. ``invoked_function_arn`` and ``log_group_name`` follow from the name when not given.
    """

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = REGION
    invoked_function_arn: str = ""
    timeout_seconds: int | None = None
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "offline"
    identity: Any = None
    client_context: Any = None
    tenant_id: Any = None

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if self.timeout_seconds is not None:
            deadline = time.monotonic() + self.timeout_seconds

            def remaining() -> int:
                return max(0, int((deadline - time.monotonic()) * 1000))

            self.get_remaining_time_in_millis = remaining
