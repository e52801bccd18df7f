"""``s3://bucket/key`` URIs: parse and build, and the rule every checkpoint URI follows.

Nova training jobs write checkpoints to escrow buckets AWS creates for them:
``customer-escrow-<account>-smtj-<id>`` for SageMaker training jobs and ``customer-escrow-<account>-hp-<id>``
for HyperPod. :func:`check_checkpoint_uri` accepts only a training-job checkpoint of this account.
"""

from __future__ import annotations

import re

# S3 bucket naming rules (general purpose buckets): 3-63 of a-z, 0-9, '.', '-'.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


ESCROW_BUCKET_PREFIX = "customer-escrow-"
# customer-escrow-<12-digit account>-<smtj|hp>-<id>: a bucket name is at most 63 characters.
_ESCROW = re.compile(r"^customer-escrow-(?P<account>\d{12})-(?P<kind>smtj|hp)-(?P<id>[a-z0-9][a-z0-9-]*)$")
TRAINING_JOB_ESCROW = "customer-escrow-<account>-smtj-<id>"


class S3UriError(ValueError):
    """Not an ``s3://bucket/key`` URI."""


class CheckpointUriError(S3UriError):
    """A URI that is not a training-job checkpoint of this account; the message says why."""


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


def check_checkpoint_uri(uri: str, account: str | None) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://customer-escrow-<account>-smtj-<id>/<key>``, or :class:`CheckpointUriError`.

    ``account`` is this account (12 digits); ``None`` checks the form alone (any account). A HyperPod
    checkpoint (``-hp-``), another account's escrow bucket, any other bucket and a malformed URI are
    refused, each with its reason.
    """
    try:
        bucket, key = parse_s3_uri(uri)
    except CheckpointUriError:
        raise
    except S3UriError as error:
        raise CheckpointUriError(f"{error}; a checkpoint is s3://{TRAINING_JOB_ESCROW}/<key>") from error
    if not bucket.startswith(ESCROW_BUCKET_PREFIX):
        raise CheckpointUriError(
            f"{uri} is not in an escrow bucket: Nova training jobs write their checkpoints to "
            f"{TRAINING_JOB_ESCROW}, and the training and Bedrock import roles can read only those"
        )
    match = _ESCROW.match(bucket)
    if match is None:
        raise CheckpointUriError(
            f"{uri}: bucket {bucket} is not a well-formed escrow bucket name; expected "
            f"{TRAINING_JOB_ESCROW} with a 12-digit account"
        )
    owner, kind = match["account"], match["kind"]
    if account is not None and owner != account:
        raise CheckpointUriError(
            f"{uri} is in an escrow bucket of account {owner}, not of this account {account}: "
            f"the pipeline can use only checkpoints its own account's training jobs wrote"
        )
    if kind == "hp":
        raise CheckpointUriError(
            f"{uri} is a HyperPod checkpoint (customer-escrow-<account>-hp-<id>): training-job evaluation cannot "
            f"use it; give the checkpoint of a SageMaker training job ({TRAINING_JOB_ESCROW})"
        )
    return bucket, key
