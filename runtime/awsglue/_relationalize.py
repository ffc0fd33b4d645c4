"""Relationalize: flatten structs, pivot arrays out into tables joined by generated ids.

Naming follows the AWS pages "Relationalize class" and "Code example: Joining and
relationalizing data" (docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-samples-
legislators.html):

- The root table is called ``root_table_name``; struct fields become columns named with dots
  (``name.first``).
- Each array column ``p`` becomes table ``<root>_<p>`` with columns ``id`` (the join key, also
  stored in the root table's ``p`` column in place of the array), ``index`` (position in the
  array, from 0) and ``p.val`` for scalar elements or ``p.val.<field>`` for struct elements.
- An array inside an array table's elements (column ``p.val.q``) becomes ``<root>_p.val.q``,
  recursively. Maps are kept as they are.

The ids come from ``monotonically_increasing_id``: unique, not consecutive. Because the parent
and child tables must see the same ids, each level is materialised first: written as Parquet
under ``staging_path`` and read back (AWS stages CSV there), or, without a staging path,
checkpointed locally.
"""

from __future__ import annotations

import logging
import os
import uuid

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import ArrayType, DataType, StructType

from awsglue import _fieldpath as fp
from awsglue._paths import local_path

__all__ = ["relationalize"]

log = logging.getLogger("awsglue")
_ROW_ID = "__glue_row_id"


def _materialise(spark: SparkSession, df: DataFrame, staging: str | None, name: str) -> DataFrame:
    if staging:
        path = os.path.join(staging, name.replace("/", "_"))
        df.write.mode("overwrite").parquet(path)
        return spark.read.parquet(path)
    try:
        return df.localCheckpoint(eager=True)
    except Exception:  # noqa: BLE001 - Spark Connect lacks localCheckpoint before Spark 4
        log.warning("relationalize without staging_path: caching instead of checkpointing")
        cached = df.cache()
        cached.count()
        return cached


def _flat_columns(df: DataFrame) -> list[tuple[str, Column, DataType]]:
    return fp.flatten(df)


def _element_columns(prefix: str, value: Column, dtype: DataType) -> list[tuple[str, Column]]:
    """Columns of one pivoted element: ``prefix`` itself, or ``prefix.<field>`` for structs."""
    if isinstance(dtype, StructType) and dtype.fields:
        out: list[tuple[str, Column]] = []
        for field in dtype.fields:
            out.extend(
                _element_columns(
                    f"{prefix}.{field.name}", value.getField(field.name), field.dataType
                )
            )
        return out
    return [(prefix, value)]


def _split(
    spark: SparkSession,
    df: DataFrame,
    table: str,
    root: str,
    staging: str | None,
    out: dict[str, DataFrame],
) -> None:
    flat = _flat_columns(df)
    arrays = [name for name, _, dtype in flat if isinstance(dtype, ArrayType)]
    if not arrays:
        out[table] = df.select(*[column.alias(name) for name, column, _ in flat])
        return
    # Every row gets one id; each array column of the row is keyed by it.
    with_id = df.select(
        *[column.alias(name) for name, column, _ in flat],
        (F.monotonically_increasing_id() + 1).alias(_ROW_ID),
    )
    with_id = _materialise(spark, with_id, staging, table)
    row_id = F.col(_ROW_ID)
    columns = []
    for field in with_id.schema.fields:
        if field.name == _ROW_ID:
            continue
        column = fp.top(field.name)
        if field.name in arrays:
            column = F.when(column.isNotNull(), row_id)
        columns.append(column.alias(field.name))
    out[table] = with_id.select(*columns)
    for name in arrays:
        dtype = with_id.schema[name].dataType
        assert isinstance(dtype, ArrayType)
        exploded = with_id.select(
            row_id.alias("id"), F.posexplode(fp.top(name)).alias("index", "_glue_val")
        )
        element = _element_columns(f"{name}.val", F.col("_glue_val"), dtype.elementType)
        child = exploded.select(
            F.col("id"), F.col("index"), *[column.alias(n) for n, column in element]
        )
        _split(spark, child, f"{root}_{name}", root, staging, out)


def relationalize(
    spark: SparkSession, df: DataFrame, root_table_name: str, staging_path: str | None
) -> dict[str, DataFrame]:
    """Split a frame into the root table and one table per array, as AWS's Relationalize.

    Args:
        spark: the session (to read staged tables back).
        df: the frame.
        root_table_name: the root table's name (AWS's default is ``roottable``).
        staging_path: where levels are staged (s3:// mapped like any path); None: checkpoint.

    Returns:
        Table name to DataFrame, root first.
    """
    staging = None
    if staging_path:
        staging = os.path.join(local_path(staging_path), f"relationalize-{uuid.uuid4().hex}")
    out: dict[str, DataFrame] = {}
    _split(spark, df, root_table_name, root_table_name, staging, out)
    return out
