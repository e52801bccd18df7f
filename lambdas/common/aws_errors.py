"""Classifying AWS SDK errors, shared by every function package.

Works on botocore's ``ClientError`` (``error.response["Error"]``) without importing
botocore, and answers ``None`` / ``False`` for any other exception.
"""

from __future__ import annotations

from typing import Any

# What S3, SageMaker, Bedrock and Step Functions answer for an object or resource that does not exist.
MISSING_CODES = frozenset(
    {
        "404",
        "NoSuchKey",
        "NoSuchVersion",
        "NotFound",
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ExecutionDoesNotExist",
    }
)
ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
PRECONDITION_FAILED_CODES = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict"})
# SageMaker's Describe* calls answer ``ValidationException: Requested resource not found`` for a missing job.
_NOT_FOUND_MESSAGE = "not found"


def _error(error: BaseException) -> dict[str, Any]:
    response = getattr(error, "response", None)
    details = response.get("Error") if isinstance(response, dict) else None
    return details if isinstance(details, dict) else {}


def error_code(error: BaseException) -> str | None:
    """``"NoSuchKey"``, ``"ConflictException"``... of a service error; ``None`` when there is none."""
    code = _error(error).get("Code")
    return None if code is None else str(code)


def is_missing(error: BaseException) -> bool:
    """Whether ``error`` says the object, version or resource asked for does not exist."""
    code = error_code(error)
    if code in MISSING_CODES:
        return True
    message = str(_error(error).get("Message") or "")
    return code == "ValidationException" and _NOT_FOUND_MESSAGE in message.lower()


def is_access_denied(error: BaseException) -> bool:
    """Whether ``error`` says the caller may not read or write the object."""
    return error_code(error) in ACCESS_DENIED_CODES


def is_precondition_failed(error: BaseException) -> bool:
    """Whether a conditional write (``If-None-Match``) found the object already there."""
    return error_code(error) in PRECONDITION_FAILED_CODES
