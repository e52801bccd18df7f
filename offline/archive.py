"""``tar.gz`` archives as SageMaker jobs leave them (``<output path>/<job>/output/output.tar.gz``)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from typing import Any


def tar_gz(members: Mapping[str, bytes]) -> bytes:
    """A gzipped tar holding ``members`` (member name -> content), in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def put_archive(s3: Any, uri: str, members: Mapping[str, bytes]) -> None:
    """Upload :func:`tar_gz` of ``members`` to ``uri`` (``s3://bucket/key``) with the S3 client ``s3``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=tar_gz(members))
