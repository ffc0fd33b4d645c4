"""PostgreSQL and MySQL over JDBC, with job bookmarks on ``jobBookmarkKeys``.

Connection options follow "Connection types and options for ETL in AWS Glue" (JDBC: ``url``,
``user``, ``password``, ``dbtable``, ``customJdbcDriverS3Path``, ``customJdbcDriverClassName``)
and bookmarks follow "Using job bookmarks" (docs.aws.amazon.com/glue/latest/dg/programming-
etl-connect-bookmarks.html): the bookmark keys must each be strictly monotonically increasing
(``asc``, the default) or decreasing (``desc``); a run reads the rows whose key tuple lies
beyond the committed one. AWS falls back to the primary key without ``jobBookmarkKeys``; this
runtime requires the keys.

A run first looks up the current last key (one small query), then reads the rows between the
committed key and that one, both bounds pushed down to the database. Rows inserted during the
run are therefore left for the next run instead of being skipped.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias

from awsglue._bookmarks import Bookmarks
from awsglue._fieldpath import top

__all__ = ["JDBC_TYPES", "read_jdbc", "write_jdbc"]

log = logging.getLogger("awsglue")
# connection_type -> (driver class, identifier quote)
JDBC_TYPES = {
    "postgresql": ("org.postgresql.Driver", '"'),
    "mysql": ("com.mysql.cj.jdbc.Driver", "`"),
}
# Glue's own options, not Spark's; everything else in connection_options is left out too, so
# a Glue-only option cannot reach the JDBC driver by accident.
_SPARK_PASSTHROUGH = ("fetchsize", "batchsize", "queryTimeout", "sessionInitStatement")


def _connection(
    spark: SparkSession, connection_type: str, options: dict[str, Any]
) -> dict[str, str]:
    missing = [key for key in ("url", "dbtable") if not options.get(key)]
    if missing:
        raise ValueError(f"{connection_type} connection_options need {', '.join(missing)}")
    driver = options.get("customJdbcDriverClassName") or JDBC_TYPES[connection_type][0]
    conn = {"url": str(options["url"]), "dbtable": str(options["dbtable"]), "driver": driver}
    for key in ("user", "password", *_SPARK_PASSTHROUGH):
        if options.get(key) is not None:
            conn[key] = str(options[key])
    jar = options.get("customJdbcDriverS3Path")
    if jar:
        # A running JVM cannot take a new jar through public APIs: the driver must be on the
        # classpath from the start (spark-submit --jars, Glue's --extra-jars).
        jars = spark.conf.get("spark.jars", "") or ""
        if str(jar).rsplit("/", 1)[-1] not in jars:
            log.warning(
                "customJdbcDriverS3Path %s is not in spark.jars (%s): pass the driver jar with "
                "--jars / --extra-jars when the run starts",
                jar,
                jars or "empty",
            )
    return conn


def _reader(spark: SparkSession, conn: dict[str, str]) -> DataFrameReader:
    reader = spark.read.format("jdbc")
    for key, value in conn.items():
        reader = reader.option(key, value)
    return reader


def _json_value(value: Any) -> Any:
    # Bookmark values live in JSON; Spark casts them back to the key column's type.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def _beyond(keys: list[str], values: list[Any], df: DataFrame, descending: bool) -> Column:
    """(k1, k2, ...) > (v1, v2, ...) lexicographically (< when descending)."""
    condition: Column | None = None
    equal_so_far: Column | None = None
    for key, value in zip(keys, values, strict=True):
        column = top(key)
        literal = F.lit(value).cast(df.schema[key].dataType)
        step = column < literal if descending else column > literal
        term = step if equal_so_far is None else equal_so_far & step
        condition = term if condition is None else condition | term
        same = column == literal
        equal_so_far = same if equal_so_far is None else equal_so_far & same
    assert condition is not None
    return condition


def read_jdbc(
    spark: SparkSession,
    connection_type: str,
    connection_options: dict[str, Any],
    transformation_ctx: str,
    bookmarks: Bookmarks | None,
) -> DataFrame:
    """Read a table, only past the committed bookmark when bookmarks apply.

    Args:
        spark: the session.
        connection_type: ``postgresql`` or ``mysql``.
        connection_options: url, user, password, dbtable, jobBookmarkKeys,
            jobBookmarkKeysSortOrder ...
        transformation_ctx: the bookmark key ("" for none).
        bookmarks: the run's bookmarks, or None before ``job.init``.

    Raises:
        ValueError: missing options; bookmarks on without ``jobBookmarkKeys``.
    """
    conn = _connection(spark, connection_type, connection_options)
    df = _reader(spark, conn).load()
    if not (transformation_ctx and bookmarks is not None and bookmarks.active):
        return df
    keys = connection_options.get("jobBookmarkKeys")
    if isinstance(keys, str):
        keys = [keys]
    if not keys:
        raise ValueError(
            f"job bookmarks are on for {transformation_ctx!r} but connection_options have no "
            "jobBookmarkKeys: this runtime needs the bookmark key columns listed (AWS would "
            "use the primary key)"
        )
    order = str(connection_options.get("jobBookmarkKeysSortOrder", "asc")).lower()
    if order not in ("asc", "desc"):
        raise ValueError(f"jobBookmarkKeysSortOrder must be asc or desc, not {order!r}")
    descending = order == "desc"
    # Databases fold unquoted names (PostgreSQL to lower case): match keys without case.
    by_lower = {c.lower(): c for c in df.columns}
    missing = [k for k in keys if k.lower() not in by_lower]
    if missing:
        raise ValueError(f"jobBookmarkKeys {missing} are not columns of {conn['dbtable']}")
    keys = [by_lower[k.lower()] for k in keys]

    entry = bookmarks.entry(transformation_ctx) or {}
    previous = entry.get("last") if entry.get("keys") == list(keys) else None
    if entry and previous is None:
        log.warning("%s: bookmark keys changed; reading the whole table", transformation_ctx)

    # The last key now, found by the database: rows past it are left for the next run.
    quote = JDBC_TYPES[connection_type][1]
    direction = "ASC" if descending else "DESC"
    select = ", ".join(quote + k.replace(quote, quote * 2) + quote for k in keys)
    ordering = ", ".join(f"{quote}{k.replace(quote, quote * 2)}{quote} {direction}" for k in keys)
    last_query = f"SELECT {select} FROM {conn['dbtable']} ORDER BY {ordering} LIMIT 1"
    last_conn = {k: v for k, v in conn.items() if k != "dbtable"} | {"query": last_query}
    rows = _reader(spark, last_conn).load().collect()

    last = previous
    if previous is not None:
        df = df.filter(_beyond(list(keys), previous, df, descending))
    if rows:
        last = [_json_value(rows[0][i]) for i in range(len(keys))]
        df = df.filter(~_beyond(list(keys), last, df, descending))
    log.info("%s: reading %s past %s up to %s", transformation_ctx, conn["dbtable"], previous, last)
    bookmarks.stage(
        transformation_ctx,
        {"source": "jdbc", "keys": list(keys), "sort_order": order, "last": last},
    )
    return df


def write_jdbc(df: DataFrame, connection_type: str, connection_options: dict[str, Any]) -> None:
    """Append a frame to a table (created by Spark if it does not exist).

    Args:
        df: the data.
        connection_type: ``postgresql`` or ``mysql``.
        connection_options: url, user, password, dbtable ...
    """
    conn = _connection(df.sparkSession, connection_type, connection_options)
    writer = df.write.format("jdbc").mode("append")
    for key, value in conn.items():
        writer = writer.option(key, value)
    writer.save()
