"""DynamicRecords for Python functions: Filter, Map and Unbox on a DataFrame-backed frame.

A function given to ``filter``/``map`` receives a record as a ``dict`` (nested structs are
dicts, arrays are lists), the way AWS's DynamicRecord is used in scripts (``rec["a"]["b"]``,
``rec["new"] = ...``). Records returned by ``map`` are self-describing: their schema is found
by a first pass that collects the distinct type signatures of the results, then a second
pass builds the rows with that schema. Both passes are plain Python UDFs, so this works on
classic Spark and Spark Connect; the executors must be able to import ``awsglue``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Mapping
from typing import Any

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    NullType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from awsglue._fieldpath import top

__all__ = [
    "conform",
    "filter_frame",
    "infer_schema",
    "loads_json",
    "map_frame",
    "signature",
    "to_record",
]

Sig = Any  # "long" | "double" | ... | {"struct": [[name, Sig], ...]} | {"array": Sig}
_INT32 = (-(2**31), 2**31 - 1)
_INTEGRAL = (ByteType, ShortType, IntegerType, LongType)


def to_record(value: Any) -> Any:
    """A Spark Row (or nested value) as plain dicts and lists.

    Args:
        value: what a UDF received.
    """
    if isinstance(value, Row):
        return {k: to_record(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, Mapping):
        return {k: to_record(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_record(v) for v in value]
    return value


def loads_json(value: str | None) -> Any:
    """Parse JSON text; None for null or text that is not JSON (unbox leaves those null).

    Args:
        value: the text.
    """
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def signature(value: Any) -> Sig:
    """The type signature of a Python value (JSON-serialisable, mergeable).

    Args:
        value: a record or any value inside one.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int" if _INT32[0] <= value <= _INT32[1] else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray):
        return "binary"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, Row | Mapping):
        items = value.asDict() if isinstance(value, Row) else value
        return {"struct": [[str(k), signature(v)] for k, v in items.items()]}
    if isinstance(value, list | tuple):
        element: Sig = "null"
        for item in value:
            element = merge(element, signature(item))
        return {"array": element}
    return "string"


def merge(a: Sig, b: Sig) -> Sig:
    """The signature that holds values of both signatures (string when nothing narrower does).

    Args:
        a: a signature.
        b: another.
    """
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    numeric = ["int", "long", "decimal", "double"]
    if a in numeric and b in numeric:
        return numeric[max(numeric.index(a), numeric.index(b))]
    if isinstance(a, dict) and isinstance(b, dict):
        if "struct" in a and "struct" in b:
            merged = dict(a["struct"])
            for name, sig in b["struct"]:
                merged[name] = merge(merged[name], sig) if name in merged else sig
            return {"struct": [[name, sig] for name, sig in merged.items()]}
        if "array" in a and "array" in b:
            return {"array": merge(a["array"], b["array"])}
    return "string"


def to_spark(sig: Sig, hint: DataType | None = None) -> DataType:
    """The Spark type for a signature, keeping the input's type where it still fits.

    Args:
        sig: a merged signature.
        hint: the type the input frame had at the same place (None if new).
    """
    if isinstance(sig, dict) and "struct" in sig:
        if isinstance(hint, MapType):
            return hint  # a map came in as a dict and goes back as one
        hints = {f.name: f.dataType for f in hint.fields} if isinstance(hint, StructType) else {}
        return StructType(
            [StructField(name, to_spark(s, hints.get(name)), True) for name, s in sig["struct"]]
        )
    if isinstance(sig, dict) and "array" in sig:
        inner = hint.elementType if isinstance(hint, ArrayType) else None
        return ArrayType(to_spark(sig["array"], inner), True)
    if sig == "null":
        # All values null: keep the input's type; a new field gets string (NullType cannot be
        # written by most formats).
        return hint if hint is not None else StringType()
    if sig == "int":
        return (
            hint
            if isinstance(hint, IntegerType | LongType)
            else (IntegerType() if isinstance(hint, ByteType | ShortType) else LongType())
        )
    if sig == "long":
        return LongType()
    if sig == "double":
        return hint if isinstance(hint, FloatType | DoubleType) else DoubleType()
    if sig == "decimal":
        return hint if isinstance(hint, DecimalType) else DecimalType(38, 18)
    if sig == "timestamp":
        return hint if isinstance(hint, TimestampNTZType) else TimestampType()
    simple: dict[str, DataType] = {
        "boolean": BooleanType(),
        "string": StringType(),
        "binary": BinaryType(),
        "date": DateType(),
    }
    return simple.get(sig, StringType())


def conform(value: Any, dtype: DataType) -> Any:
    """Convert a Python value so Spark accepts it as ``dtype`` (None when it cannot).

    Args:
        value: a value a user function returned.
        dtype: the type of its column.
    """
    if value is None:
        return None
    try:
        if isinstance(dtype, StructType):
            if isinstance(value, Row):
                value = value.asDict()
            if not isinstance(value, Mapping):
                return None
            return tuple(conform(value.get(f.name), f.dataType) for f in dtype.fields)
        if isinstance(dtype, ArrayType):
            if not isinstance(value, list | tuple):
                return None
            return [conform(v, dtype.elementType) for v in value]
        if isinstance(dtype, MapType):
            if not isinstance(value, Mapping):
                return None
            return {
                conform(k, dtype.keyType): conform(v, dtype.valueType) for k, v in value.items()
            }
        return _conform_scalar(value, dtype)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _conform_scalar(value: Any, dtype: DataType) -> Any:
    if isinstance(dtype, StringType):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Mapping | list | tuple):
            return json.dumps(to_record(value), default=str)
        return value if isinstance(value, str) else str(value)
    if isinstance(dtype, BooleanType):
        if isinstance(value, str):
            return {"true": True, "false": False}.get(value.strip().lower())
        return bool(value)
    if isinstance(dtype, _INTEGRAL):
        return int(value)
    if isinstance(dtype, FloatType | DoubleType):
        return float(value)
    if isinstance(dtype, DecimalType):
        return decimal.Decimal(str(value))
    if isinstance(dtype, TimestampType | TimestampNTZType):
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time())
        return dt.datetime.fromisoformat(str(value))
    if isinstance(dtype, DateType):
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if isinstance(dtype, BinaryType):
        return bytes(value, "utf-8") if isinstance(value, str) else bytes(value)
    if isinstance(dtype, NullType):
        return None
    return value


def _record_column(df: DataFrame) -> Column:
    return F.struct(*[top(f.name) for f in df.schema.fields])


def filter_frame(df: DataFrame, f: Callable[[dict[str, Any]], Any]) -> DataFrame:
    """Keep the rows for which ``f(record)`` is truthy.

    Args:
        df: the frame.
        f: the predicate; it receives each record as a dict.
    """

    def keep(row: Row) -> bool:
        return bool(f(to_record(row)))

    return df.filter(F.udf(keep, BooleanType())(_record_column(df)))


def infer_schema(
    df: DataFrame, values: Column, fn: Callable[[Any], Any], hint: DataType | None
) -> DataType | None:
    """The type of ``fn(value)`` over all rows: distinct signatures collected, then merged.

    Args:
        df: the frame.
        values: the column passed to ``fn``.
        fn: runs on the executors; returns the Python value whose type is wanted.
        hint: the input type to keep where it fits.

    Returns:
        The merged type, or None when there are no non-null values.
    """

    def sig(value: Any) -> str | None:
        result = fn(value)
        return None if result is None else json.dumps(signature(result))

    # Nondeterministic: Spark must not inline the UDF twice or reorder it around filters.
    sig_udf = F.udf(sig, StringType()).asNondeterministic()
    rows = df.select(sig_udf(values).alias("s")).where(F.col("s").isNotNull()).distinct()
    merged: Sig = "null"
    for row in rows.collect():
        merged = merge(merged, json.loads(row["s"]))
    return None if merged == "null" else to_spark(merged, hint)


def map_frame(df: DataFrame, f: Callable[[dict[str, Any]], Any]) -> DataFrame:
    """Apply ``f`` to every record; records ``f`` maps to None are dropped.

    Args:
        df: the frame.
        f: receives each record as a dict, returns the new record (a dict).

    Raises:
        TypeError: ``f`` returned something other than a dict (or None).
    """

    def apply(row: Row) -> Any:
        result = f(to_record(row))
        if result is not None and not isinstance(result, Mapping | Row):
            raise TypeError(f"a Map function must return a dict, not {type(result).__name__}")
        return result

    record = _record_column(df)
    schema = infer_schema(df, record, apply, df.schema)
    if schema is None:
        return df.limit(0)
    assert isinstance(schema, StructType)

    def build(row: Row) -> Any:
        return conform(apply(row), schema)

    build_udf = F.udf(build, schema).asNondeterministic()
    mapped = df.select(build_udf(record).alias("_glue_record"))
    return mapped.where(F.col("_glue_record").isNotNull()).select("_glue_record.*")
