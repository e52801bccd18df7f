"""The error code of an AWS SDK error, shared by every function package.

Works on botocore's ``ClientError`` (``error.response["Error"]["Code"]``) without
importing botocore, and answers ``None`` for any other exception.
"""

from __future__ import annotations


def error_code(error: BaseException) -> str | None:
    """``"NoSuchKey"``, ``"ConflictException"``... of a service error; ``None`` when there is none."""
    return getattr(error, "response", {}).get("Error", {}).get("Code")
