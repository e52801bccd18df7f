"""Checks a run request before it may start an execution.

The trigger runs the pipeline's own run-input checks that need no AWS call
(:func:`lambdas.pipeline.validation.input_problems`: shape, types, unknown keys,
stage combinations, dataset URIs inside the data bucket), so a request that the
first state would refuse is rejected at once, with the same messages, instead of
starting an execution. The pipeline's first state checks everything again,
including that the datasets exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from lambdas.common import strict_json
from lambdas.pipeline.validation import input_problems

# Step Functions refuses execution input larger than 256 KiB.
MAX_REQUEST_BYTES = 256 * 1024

Validator = Callable[[object], list[str]]


def request_validator(data_bucket: str | None) -> Validator:
    """Every problem of a request (empty when it may start a run), datasets confined to ``data_bucket``."""
    return partial(input_problems, data_bucket=data_bucket)


def parse_request(body: bytes, validate: Validator) -> tuple[dict[str, Any] | None, list[str]]:
    """The request as a JSON object and every problem found; the object is ``None`` when unusable."""
    if len(body) > MAX_REQUEST_BYTES:
        return None, [f"the request is larger than {MAX_REQUEST_BYTES} bytes, the most Step Functions accepts as input"]
    try:
        payload = strict_json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"not valid JSON: {error}"]
    except strict_json.NotStrictJson as error:
        return None, [f"not strict JSON: {error}"]
    problems = validate(payload)
    return (payload if not problems else None), problems
