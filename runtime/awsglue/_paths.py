"""Where an ``s3://`` URI lives on this machine: ``$AWSGLUE_S3_ROOT/<bucket>/<key>``.

There is no S3 here. The scheduler points ``AWSGLUE_S3_ROOT`` at a directory whose
subdirectories stand for buckets, so a script's ``s3://bucket/key`` paths work unchanged.
``file://`` URIs and absolute paths are used as they are. No PySpark needed.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

__all__ = ["S3_ROOT_ENV", "S3_SCHEMES", "is_s3_uri", "local_path", "s3_uri_of"]

S3_ROOT_ENV = "AWSGLUE_S3_ROOT"
# s3a:// and s3n:// are Hadoop's spellings of the same thing; Glue scripts use all three.
S3_SCHEMES = ("s3", "s3a", "s3n")


def is_s3_uri(uri: str) -> bool:
    """Whether ``uri`` names an object in S3 (``s3://``, ``s3a://`` or ``s3n://``).

    Args:
        uri: a path or URI as a script wrote it.
    """
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme.lower() in S3_SCHEMES


def local_path(uri: str) -> str:
    """Map a path or URI from a script to a path on the local file system.

    Args:
        uri: ``s3://bucket/key`` (or s3a/s3n), ``file:///abs/path``, or a plain path.

    Returns:
        ``$AWSGLUE_S3_ROOT/bucket/key`` for S3 URIs; the path part of a ``file://`` URI; a
        plain path unchanged. A trailing ``/`` is kept, since Glue users write folders so.

    Raises:
        ValueError: an S3 URI while ``AWSGLUE_S3_ROOT`` is unset, an S3 URI with no bucket or
            one that climbs out of its bucket with ``..``, or a scheme other than S3/file.
    """
    if "://" not in uri:
        return uri
    scheme = uri.partition("://")[0].lower()
    if scheme == "file":
        # file:///a/b and file://localhost/a/b are both /a/b.
        return unquote(urlsplit(uri).path) or "/"
    if scheme not in S3_SCHEMES:
        raise ValueError(
            f"cannot read or write {uri!r}: only s3://, s3a://, s3n://, file:// URIs and "
            "local paths are supported here"
        )
    root = os.environ.get(S3_ROOT_ENV)
    if not root:
        raise ValueError(
            f"{uri!r} is an S3 path, but {S3_ROOT_ENV} is not set: set {S3_ROOT_ENV} to the "
            "local directory that holds the buckets (s3://bucket/key is read from "
            f"${S3_ROOT_ENV}/bucket/key)"
        )
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket or bucket in (".", ".."):
        raise ValueError(f"{uri!r} names no bucket")
    bucket_dir = os.path.join(os.path.abspath(root), bucket)
    mapped = os.path.normpath(os.path.join(bucket_dir, key)) if key else bucket_dir
    # A key is an object name, not a path to walk: refuse ../ that would leave the bucket.
    if mapped != bucket_dir and not mapped.startswith(bucket_dir + os.sep):
        raise ValueError(f"{uri!r} climbs out of its bucket")
    if key.endswith("/") and not mapped.endswith("/"):
        mapped += "/"
    return mapped


def s3_uri_of(base_uri: str, base_local: str, file_path: str) -> str:
    """The URI a script would use for ``file_path``, found under ``base_uri``.

    Bookmarks record files by this name so that moving ``AWSGLUE_S3_ROOT`` keeps them valid.

    Args:
        base_uri: the path or URI the script gave (``s3://bucket/in/``).
        base_local: ``local_path(base_uri)``.
        file_path: a local file at or under ``base_local``.
    """
    rel = os.path.relpath(file_path, base_local.rstrip("/") or "/")
    if rel == ".":
        return base_uri
    return base_uri.rstrip("/") + "/" + rel.replace(os.sep, "/")
