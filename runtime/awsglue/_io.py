"""Dispatch of reads and writes by ``connection_type`` (s3/file and JDBC)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from awsglue import _jdbc, _s3
from awsglue._csvtypes import CsvTyping, StagedFiles

if TYPE_CHECKING:
    from awsglue.context import GlueContext

__all__ = ["NO_CATALOG", "is_file_connection", "read", "read_source", "write", "write_staged"]

NO_CATALOG = (
    "there is no AWS Glue Data Catalog here: {what} is not supported; use {instead} with "
    "connection_type='s3' (connection_options paths/path and a format) or a JDBC "
    "connection_type ('postgresql', 'mysql') with url/dbtable"
)
_FILE_TYPES = ("s3", "file")


def _supported() -> str:
    return ", ".join([*_FILE_TYPES, *_jdbc.JDBC_TYPES])


def is_file_connection(connection_type: str) -> bool:
    """Whether a connection type writes files (``s3``, ``file``).

    Args:
        connection_type: the script's connection type.
    """
    return (connection_type or "").lower() in _FILE_TYPES


def read(
    glue_ctx: GlueContext,
    connection_type: str,
    connection_options: dict[str, Any] | None,
    format: str | None,
    format_options: dict[str, Any] | None,
    transformation_ctx: str,
) -> DataFrame:
    """``read_source`` with a CSV source's column types settled: a plain DataFrame, as
    ``create_data_frame`` returns it.

    Args and raises: as ``read_source``.
    """
    source = read_source(
        glue_ctx, connection_type, connection_options, format, format_options, transformation_ctx
    )
    return source.frame() if isinstance(source, CsvTyping) else source


def read_source(
    glue_ctx: GlueContext,
    connection_type: str,
    connection_options: dict[str, Any] | None,
    format: str | None,
    format_options: dict[str, Any] | None,
    transformation_ctx: str,
) -> DataFrame | CsvTyping:
    """Read from a connection. A CSV source comes back as a ``CsvTyping``, its columns' Glue
    types still to settle, so that a DynamicFrame written to files can check them in the pass
    that writes it (``_csvtypes``); other sources as a DataFrame.

    Args:
        glue_ctx: the GlueContext (session and bookmarks).
        connection_type: ``s3``, ``file``, ``postgresql`` or ``mysql``.
        connection_options: Glue's connection options for that type.
        format: the file format (file connections).
        format_options: Glue's format options.
        transformation_ctx: the bookmark key ("" for none).

    Raises:
        ValueError: an unsupported connection type, or bad options.
    """
    kind = (connection_type or "").lower()
    options = dict(connection_options or {})
    if kind in _FILE_TYPES:
        return _s3.read_files(
            glue_ctx.spark_session,
            options,
            format,
            dict(format_options or {}),
            transformation_ctx,
            glue_ctx._bookmarks,
        )
    if kind in _jdbc.JDBC_TYPES:
        return _jdbc.read_jdbc(
            glue_ctx.spark_session, kind, options, transformation_ctx, glue_ctx._bookmarks
        )
    raise ValueError(f"connection_type {connection_type!r} is not supported; use {_supported()}")


def write(
    df: DataFrame,
    connection_type: str,
    connection_options: dict[str, Any] | None,
    format: str | None,
    format_options: dict[str, Any] | None,
) -> None:
    """Write a DataFrame to a connection (appending, as Glue's sinks do).

    Args:
        df: the data.
        connection_type: ``s3``, ``file``, ``postgresql`` or ``mysql``.
        connection_options: Glue's connection options for that type.
        format: the file format (file connections).
        format_options: Glue's format options.

    Raises:
        ValueError: an unsupported connection type, or bad options.
    """
    kind = (connection_type or "").lower()
    options = dict(connection_options or {})
    if kind in _FILE_TYPES:
        _s3.write_files(df, options, format, dict(format_options or {}))
    elif kind in _jdbc.JDBC_TYPES:
        _jdbc.write_jdbc(df, kind, options)
    else:
        raise ValueError(
            f"connection_type {connection_type!r} is not supported; use {_supported()}"
        )


def write_staged(
    df: DataFrame,
    connection_options: dict[str, Any] | None,
    format: str | None,
    format_options: dict[str, Any] | None,
) -> StagedFiles | None:
    """Write a DataFrame into a hidden staging folder of a file sink (``is_file_connection``).

    Args:
        df: the data.
        connection_options: Glue's connection options (``path`` ...).
        format: the file format.
        format_options: Glue's format options.

    Returns:
        The staged files, or None when there was nothing to write.
    """
    options = dict(connection_options or {})
    return _s3.write_files(df, options, format, dict(format_options or {}), staged=True)
