"""Glue type names (as written in ApplyMapping and resolveChoice) and Spark SQL types.

Glue's names are case-insensitive (``"String"``, ``"Long"`` both appear in AWS examples).
``decimal`` without precision is Glue's ``decimal(10,2)``, not Spark's ``decimal(10,0)``. A name
this table lacks is handed to Spark as a DDL type string (``array<int>``), so anything Spark
can cast to still works.
"""

from __future__ import annotations

import re

from awsglue._guard import require_spark

require_spark("awsglue.gluetypes")

from pyspark.sql import Column  # noqa: E402 - after the pythonshell guard, on purpose
from pyspark.sql.types import (  # noqa: E402
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
    StructType,
    TimestampNTZType,
    TimestampType,
)

__all__ = ["cast_to", "glue_type_name", "spark_type"]

_SIMPLE: dict[str, DataType] = {
    "string": StringType(),
    "varchar": StringType(),
    "char": StringType(),
    "int": IntegerType(),
    "integer": IntegerType(),
    "long": LongType(),
    "bigint": LongType(),
    "short": ShortType(),
    "smallint": ShortType(),
    "byte": ByteType(),
    "tinyint": ByteType(),
    "double": DoubleType(),
    "float": FloatType(),
    "boolean": BooleanType(),
    "bool": BooleanType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "binary": BinaryType(),
    "null": NullType(),
}
# Names that say "keep the value's own nested type": ApplyMapping lists them for arrays/structs.
_KEEP = {"array", "struct", "map", "object", "choice"}
_DECIMAL = re.compile(r"^decimal\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")


def spark_type(name: str) -> DataType | None:
    """The Spark type for a Glue type name, or None for a nested kind kept as it is.

    Args:
        name: ``string``, ``long``, ``decimal(12,4)``, ``array`` ...

    Returns:
        A Spark DataType; None for ``array``/``struct``/``map``/``choice`` (no cast) and for
        names not in the table (the caller casts with the DDL string).
    """
    key = name.strip().lower()
    if key in _SIMPLE:
        return _SIMPLE[key]
    match = _DECIMAL.match(key)
    if match:
        precision = int(match.group(1) or 10)
        scale = int(match.group(2) or (2 if match.group(1) is None else 0))
        return DecimalType(precision, scale)
    return None


def cast_to(column: Column, current: DataType, name: str) -> Column:
    """Cast a column to a Glue type name, leaving it alone when it already has that type.

    Args:
        column: the value.
        current: its Spark type.
        name: the Glue type name to cast to.

    Returns:
        The cast column (Spark's cast: values that do not convert become null).
    """
    key = name.strip().lower()
    if key in _KEEP:
        return column
    target = spark_type(key)
    if target is None:
        # Not a Glue name: Spark parses it as a DDL type (array<int>, struct<a:int> ...).
        return column.cast(name)
    if target == current:
        return column
    return column.cast(target)


def glue_type_name(dtype: DataType) -> str:
    """The Glue name of a Spark type, as Glue's printSchema shows it.

    Args:
        dtype: a Spark type.
    """
    names: list[tuple[type[DataType], str]] = [
        (StringType, "string"),
        (IntegerType, "int"),
        (LongType, "long"),
        (ShortType, "short"),
        (ByteType, "byte"),
        (DoubleType, "double"),
        (FloatType, "float"),
        (BooleanType, "boolean"),
        (DateType, "date"),
        (TimestampType, "timestamp"),
        (TimestampNTZType, "timestamp"),
        (BinaryType, "binary"),
        (NullType, "null"),
        (StructType, "struct"),
        (ArrayType, "array"),
        (MapType, "map"),
    ]
    if isinstance(dtype, DecimalType):
        return f"decimal({dtype.precision},{dtype.scale})"
    for cls, glue_name in names:
        if isinstance(dtype, cls):
            return glue_name
    return dtype.simpleString()
