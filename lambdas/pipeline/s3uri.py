"""``s3://bucket/key`` URIs: parse and build."""

from __future__ import annotations

import re

# S3 bucket naming rules (general purpose buckets): 3-63 of a-z, 0-9, '.', '-'.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3UriError(ValueError):
    """Not an ``s3://bucket/key`` URI."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key may be a prefix ending with ``/``."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"expected an s3://bucket/key URI, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise S3UriError(f"{uri!r} does not name a valid bucket")
    if not key:
        raise S3UriError(f"{uri!r} names a bucket but no object")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
