"""S3 (and local file) sources and sinks: formats, Glue's format options, file bookmarks.

Formats and options follow the AWS page "Data format options for inputs and outputs in AWS
Glue" (docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format.html) and the S3
connection parameters of "Connection types and options for ETL in AWS Glue". Paths are mapped
with ``_paths.local_path``.

Job bookmarks for files follow "Tracking processed data using job bookmarks"
(docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html) in spirit: AWS compares
modification times; here each input file is remembered by name with its mtime and size, and a
file is read again only if it is new or changed. The entry is staged on read and reaches the
state file only at ``job.commit()``.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import StringType, StructField, StructType

from awsglue import _csvtypes
from awsglue._bookmarks import Bookmarks
from awsglue._csvlocal import LocalSample, read_plain_csv, sample_plain_csv
from awsglue._csvtypes import CsvTyping, StagedFiles, staging_folder
from awsglue._fieldpath import quote as quote_name
from awsglue._fieldpath import top
from awsglue._paths import local_path, s3_uri_of

__all__ = ["list_files", "read_files", "write_files"]

log = logging.getLogger("awsglue")
READ_FORMATS = ("csv", "json", "parquet", "orc", "text")
WRITE_FORMATS = ("csv", "json", "parquet", "glueparquet", "orc", "text")
# Above this many paths (32 by default) Spark lists a source's paths in a Spark job of its own.
PARALLEL_LISTING = "spark.sql.sources.parallelPartitionDiscovery.threshold"


def _truthy(value: Any) -> bool:
    # Glue takes booleans as True or "true" alike.
    return value is True or str(value).strip().lower() == "true"


def _option(options: dict[str, Any], *names: str, default: Any = None) -> Any:
    # Glue's docs spell some options two ways (multiline / multiLine).
    for name in names:
        if name in options:
            return options[name]
    return default


@dataclass(frozen=True)
class InputFile:
    """One input file: its URI as the script would name it, local path, mtime and size."""

    uri: str
    path: str
    mtime_ns: int
    size: int


def _hidden(name: str) -> bool:
    # Spark skips these too (_SUCCESS, .crc files, _temporary dirs).
    return name.startswith(("_", "."))


def _walk(base: str, recurse: bool) -> list[str]:
    """Files Spark would read under ``base``: its files, plus key=value partition dirs."""
    if os.path.isfile(base):
        return [base]
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d) and (recurse or "=" in d))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not _hidden(f))
    return found


def list_files(paths: list[str], recurse: bool, exclusions: list[str]) -> list[InputFile]:
    """List the input files under the given paths (globs allowed), as Spark would read them.

    Args:
        paths: paths or URIs from the script (``s3://bucket/in/``).
        recurse: read all subdirectories, not only ``key=value`` partition directories.
        exclusions: glob patterns (Glue's ``exclusions``) matched against each file's URI.
    """
    files: dict[str, InputFile] = {}
    for uri in paths:
        base = local_path(uri)
        # Names are recorded relative to the part of the path before any glob character;
        # the mapping keeps key components one for one, so both sides drop the same tail.
        parts = base.split("/")
        magic = next((i for i, part in enumerate(parts) if glob.has_magic(part)), None)
        if magic is None:
            matches, base_local, base_uri = [base], base, uri
        else:
            tail = len(parts) - magic
            matches = sorted(glob.glob(base))
            base_local = "/".join(parts[:magic])
            base_uri = "/".join(uri.split("/")[:-tail])
        for match in matches:
            for path in _walk(match, recurse):
                file_uri = s3_uri_of(base_uri, base_local, path)
                if any(fnmatch.fnmatchcase(file_uri, pattern) for pattern in exclusions):
                    continue
                stat = os.stat(path)
                files[file_uri] = InputFile(file_uri, path, stat.st_mtime_ns, stat.st_size)
    return list(files.values())


def _csv_options(options: dict[str, Any]) -> tuple[str, str, str]:
    sep = str(_option(options, "separator", default=","))
    quote = str(_option(options, "quoteChar", default='"'))
    quote = "" if quote == "-1" else quote
    return sep, quote, str(_option(options, "escaper", default=quote or "\\"))


def _reader(spark: SparkSession, fmt: str, options: dict[str, Any]) -> DataFrameReader:
    reader = spark.read.format("json" if fmt == "json" else fmt)
    if fmt == "csv":
        # Glue's quoteChar -1 turns quoting off (Spark: an empty quote). Glue's escaper
        # defaults to none; RFC 4180 escapes a quote by doubling it, which is what Spark does
        # when the escape character is the quote character.
        sep, quote, escape = _csv_options(options)
        reader = reader.option("sep", sep).option("quote", quote).option("escape", escape)
        multiline = _option(options, "multiLine", "multiline", default=False)
        reader = reader.option("multiLine", _truthy(multiline))
        reader = reader.option("header", _truthy(options.get("withHeader", False)))
    elif fmt == "json":
        multiline = _option(options, "multiLine", "multiline", default=False)
        reader = reader.option("multiLine", _truthy(multiline))
    return reader


def _json_path(df: DataFrame, json_path: str) -> DataFrame:
    """Apply the jsonPath subset we support: ``$``, ``$[*]``, ``$.a.b`` and ``$.a.b[*]``."""
    path = json_path.strip()
    if path in ("$", "$[*]", "$.*"):
        return df  # Spark already reads a top-level array as one row per element
    if not path.startswith("$."):
        raise ValueError(f"jsonPath {json_path!r} is not supported (use $.a.b or $.a.b[*])")
    explode = path.endswith("[*]")
    names = path[2:].removesuffix("[*]").split(".")
    value = top(names[0])
    for name in names[1:]:
        value = value.getField(name)
    if explode:
        return df.select(F.explode(value).alias("_glue_row")).select("_glue_row.*")
    return df.select(value.alias("_glue_row")).select("_glue_row.*")


def _without_first_lines(lines: DataFrame) -> DataFrame:
    # Line ids grow with the position in each file (a file's splits are read in order), so
    # each file's smallest id is its first line.
    firsts = lines.groupBy("_file").agg(F.min("_line").alias("_line"))
    return lines.join(firsts, ["_file", "_line"], "left_anti")


def _skip_first_csv(spark: SparkSession, paths: list[str], options: dict[str, Any]) -> DataFrame:
    """CSV with Glue's skipFirst, columns as strings: each file's first line is dropped first.

    Spark's reader cannot skip a line that is not the header (and it sizes the columns by the
    first line), so the lines are read as text and parsed with ``from_csv``: records spanning
    several lines are not supported together with skipFirst.
    """
    sep, quote, escape = _csv_options(options)
    lines = spark.read.text(paths).select(
        F.col("value"),
        F.input_file_name().alias("_file"),
        F.monotonically_increasing_id().alias("_line"),
    )
    body = _without_first_lines(lines)
    if _truthy(options.get("withHeader", False)):
        firsts = body.groupBy("_file").agg(F.min("_line").alias("_line"))
        header = body.join(firsts, ["_file", "_line"]).select("value").limit(1).collect()
        reader = csv.reader(
            [header[0]["value"]] if header else [], delimiter=sep, quotechar=quote or None
        )
        names = next(reader, [])
        body = _without_first_lines(body)
    else:
        width = body.agg(F.max(F.size(F.split("value", re.escape(sep))))).collect()[0][0] or 0
        names = [f"col{i}" for i in range(width)]
    if not names:
        return spark.createDataFrame([], StructType([]))
    ddl = ", ".join(f"{quote_name(n)} string" for n in names)
    parse = {"sep": sep, "quote": quote, "escape": escape}
    return body.select(F.from_csv("value", ddl, parse).alias("_r")).select("_r.*")


def _local_sample(
    paths: list[str], names: list[str], options: dict[str, Any], header: bool, recurse: bool
) -> LocalSample | None:
    """The type sample of a CSV input, read from its first file on the driver when plain
    (``_csvlocal.sample_plain_csv``), so that no Spark job samples it."""
    if any(glob.has_magic(path) for path in paths) or _truthy(options.get("multiLine")):
        return None
    files = [(base, path) for base in paths for path in _walk(base, recurse)]
    if not recurse and any(os.sep in os.path.relpath(path, base) for base, path in files):
        return None  # key=value folders: partition columns the files do not hold
    first = next((path for _, path in files if os.path.getsize(path) > 0), None)
    if first is None:
        return None
    sep, quote, escape = _csv_options(options)
    return sample_plain_csv(
        first, sep, quote, escape, header, names, _csvtypes.SAMPLE_ROWS, len(files) == 1
    )


def _load(
    spark: SparkSession,
    reader: DataFrameReader,
    paths: list[str],
    fmt: str,
    options: dict[str, Any],
    sizes: list[int] | None = None,
    recurse: bool = False,
) -> DataFrame | CsvTyping:
    # CSV comes back with its columns' types still to settle (_csvtypes). ``sizes``: the
    # files' sizes when ``paths`` are listed files (then small plain CSV is typed here).
    if fmt == "csv" and _truthy(options.get("skipFirst", False)):
        return CsvTyping(_skip_first_csv(spark, paths, options))
    if fmt == "csv" and sizes is not None:
        sep, quote, escape = _csv_options(options)
        header = _truthy(options.get("withHeader", False))
        local = read_plain_csv(paths, sizes, sep, quote, escape, header, _csvtypes.SAMPLE_ROWS)
        if local is not None:
            # The names Spark's header job would find, so it has none to run.
            schema = StructType([StructField(name, StringType()) for name in local.names])
            return CsvTyping(reader.schema(schema).load(paths), known=local.kinds)
    df = reader.load(paths)
    if fmt == "csv":
        header = _truthy(options.get("withHeader", False))
        sample = None if sizes else _local_sample(paths, df.columns, options, header, recurse)
        if not header:
            # Glue names header-less CSV columns col0, col1, ... (Spark says _c0).
            df = df.toDF(*[f"col{i}" for i in range(len(df.columns))])
        return CsvTyping(df, sample=sample)
    if fmt == "json" and options.get("jsonPath"):
        df = _json_path(df, str(options["jsonPath"]))
    return df


def read_files(
    spark: SparkSession,
    connection_options: dict[str, Any],
    fmt: str | None,
    format_options: dict[str, Any],
    transformation_ctx: str,
    bookmarks: Bookmarks | None,
) -> DataFrame | CsvTyping:
    """Read files from S3 (mapped) or the local file system.

    Returns:
        The data; for CSV, its columns' Glue types still to be settled (``_csvtypes``).

    Args:
        spark: the session.
        connection_options: ``paths`` (list or str), ``recurse``, ``exclusions`` (a JSON list
            of globs, as Glue takes it).
        fmt: csv, json, parquet, orc or text.
        format_options: Glue's format options for ``fmt``.
        transformation_ctx: the bookmark key ("" for none).
        bookmarks: the run's bookmarks, or None before ``job.init``.

    Raises:
        ValueError: no paths, or an unsupported format.
    """
    fmt = (fmt or "").lower()
    if fmt not in READ_FORMATS:
        raise ValueError(f"format {fmt!r} is not supported for reading; use one of {READ_FORMATS}")
    paths = connection_options.get("paths") or connection_options.get("path")
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise ValueError("connection_options needs 'paths': a list of s3:// or file paths")
    recurse = _truthy(connection_options.get("recurse", False))
    exclusions = connection_options.get("exclusions") or []
    if isinstance(exclusions, str):
        exclusions = json.loads(exclusions)
    reader = _reader(spark, fmt, format_options)
    bookmarked = bool(transformation_ctx) and bookmarks is not None and bookmarks.active
    if not bookmarked and not exclusions:
        if recurse:
            reader = reader.option("recursiveFileLookup", True)
        local = [local_path(p) for p in paths]
        return _load(spark, reader, local, fmt, format_options, recurse=recurse)

    listing = list_files(list(paths), recurse, list(exclusions))
    done: dict[str, Any] = {}
    if bookmarked:
        assert bookmarks is not None
        entry = bookmarks.entry(transformation_ctx) or {}
        done = entry.get("files", {}) if entry.get("source") == "files" else {}
        # Remember what exists now; a file deleted since is forgotten, which keeps the state
        # as small as the input.
        bookmarks.stage(
            transformation_ctx,
            {
                "source": "files",
                "files": {f.uri: {"mtime_ns": f.mtime_ns, "size": f.size} for f in listing},
            },
        )
    new = [f for f in listing if done.get(f.uri) != {"mtime_ns": f.mtime_ns, "size": f.size}]
    log.info(
        "%s: %d input files, %d already processed, reading %d",
        transformation_ctx or "source",
        len(listing),
        len(listing) - len(new),
        len(new),
    )
    if recurse:
        reader = reader.option("recursiveFileLookup", True)
    elif len(paths) == 1 and os.path.isdir(local_path(paths[0])):
        # Reading listed files loses partition discovery unless Spark knows the base.
        reader = reader.option("basePath", local_path(paths[0]))
    if new:
        paths = [f.path for f in new]
        with _listed_on_the_driver(spark, len(paths)):
            return _load(spark, reader, paths, fmt, format_options, [f.size for f in new])
    # Nothing new: an empty frame, with the schema of a file already seen when there is one
    # so that the rest of the script (mappings, writes) still works.
    if listing:
        sample = _load(spark, reader, [listing[0].path], fmt, format_options)
        if isinstance(sample, CsvTyping):
            sample = sample.frame()
        return sample.limit(0)
    return spark.createDataFrame([], StructType([]))


@contextmanager
def _listed_on_the_driver(spark: SparkSession, count: int) -> Iterator[None]:
    """Let Spark take ``count`` listed files without a listing job of its own.

    They are files ``list_files`` has just found, one by one on the driver; past the threshold
    Spark would list them again in a Spark job (one task per path, ~3 s of a first bookmarked
    run over 500 files, the JVM's first job). The session's own setting is put back after.
    """
    before = spark.conf.get(PARALLEL_LISTING, None)  # None: the session has not set it
    threshold = before if before is not None else spark.conf.get(PARALLEL_LISTING)
    if count <= int(threshold or 0):
        yield  # Spark lists up to the threshold on the driver itself
        return
    spark.conf.set(PARALLEL_LISTING, str(count))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(PARALLEL_LISTING)
        else:
            spark.conf.set(PARALLEL_LISTING, before)


def write_files(
    df: DataFrame,
    connection_options: dict[str, Any],
    fmt: str | None,
    format_options: dict[str, Any],
    staged: bool = False,
) -> StagedFiles | None:
    """Append a frame to an S3 (mapped) or local path, as Glue's S3 sink does.

    Args:
        df: the data.
        connection_options: ``path``, ``partitionKeys``, ``compression``.
        fmt: csv, json, parquet (glueparquet is parquet here), orc or text.
        format_options: Glue's format options for ``fmt``.
        staged: write into a hidden folder of the path instead, and return it (the caller
            publishes or discards it).

    Returns:
        With ``staged``, the staged files (None when there was nothing to write).

    Raises:
        ValueError: no path, or an unsupported format.
    """
    fmt = (fmt or "").lower()
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"format {fmt!r} is not supported for writing; use one of {WRITE_FORMATS}")
    fmt = "parquet" if fmt == "glueparquet" else fmt
    path = connection_options.get("path")
    if not path:
        raise ValueError("connection_options needs 'path': the s3:// or file path to write to")
    if not df.schema.fields:
        log.info("nothing to write to %s: the frame has no fields", path)
        return None
    # Glue's S3 sink adds files next to what is there; it never replaces a folder.
    writer = df.write.mode("append").format(fmt)
    compression = format_options.get("compression") or connection_options.get("compression")
    if compression:
        writer = writer.option("compression", compression)
    if fmt == "csv":
        sep, quote, escape = _csv_options(format_options)
        writer = writer.option("sep", sep).option("quote", quote).option("escape", escape)
        writer = writer.option("header", _truthy(format_options.get("writeHeader", True)))
    keys = connection_options.get("partitionKeys") or []
    if keys:
        writer = writer.partitionBy(*keys)
    target = local_path(path)
    if not staged:
        writer.save(target)
        return None
    staging = staging_folder(target)
    try:
        writer.save(staging)
    except BaseException:
        StagedFiles(staging, target).discard()
        raise
    return StagedFiles(staging, target)
