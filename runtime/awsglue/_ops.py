"""The DataFrame-level work behind DynamicFrame's field and row transforms.

Paths and semantics follow the AWS page "DynamicFrame class"
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-dynamic-frame.html)
and "ApplyMapping class": dotted paths reach nested fields, backticks keep names with dots
whole (```this.old.name```), ``[]`` steps into arrays.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import ArrayType, DataType, DoubleType, StringType, StructType

from awsglue import _fieldpath as fp
from awsglue import _records
from awsglue.gluetypes import cast_to, glue_type_name, spark_type

__all__ = [
    "apply_mapping",
    "drop_fields",
    "drop_null_fields",
    "join",
    "merge",
    "rename_field",
    "schema_text",
    "select_fields",
    "split_condition",
    "types_mapping_ignores",
    "unbox",
]

log = logging.getLogger("awsglue")
_COMPARATORS: dict[str, Callable[[Column, Column], Column]] = {
    "=": lambda c, v: c == v,
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def as_list(paths: str | Sequence[str]) -> list[str]:
    """A path or a list of paths, as a list.

    Args:
        paths: one path or several.
    """
    return [paths] if isinstance(paths, str) else list(paths)


def schema_text(schema: StructType) -> str:
    """A schema in Glue's printSchema layout (``root``, then ``|-- name: type`` lines).

    Args:
        schema: the schema.
    """
    lines = ["root"]

    def walk(dtype: DataType, indent: str) -> None:
        if isinstance(dtype, StructType):
            for field in dtype.fields:
                lines.append(f"{indent}|-- {field.name}: {glue_type_name(field.dataType)}")
                walk(field.dataType, indent + "|    ")
        elif isinstance(dtype, ArrayType):
            lines.append(f"{indent}|-- element: {glue_type_name(dtype.elementType)}")
            walk(dtype.elementType, indent + "|    ")

    walk(schema, "")
    return "\n".join(lines)


def apply_mapping(df: DataFrame, mappings: Sequence[Sequence[str]]) -> DataFrame:
    """Keep, rename, retype and nest fields by (source, source_type, target, target_type).

    Args:
        df: the frame.
        mappings: 4-tuples; a source that does not exist yields no target.

    Raises:
        ValueError: a mapping is not a 4-tuple, or targets conflict.
    """
    outputs: list[tuple[list[str], Column]] = []
    for mapping in mappings:
        if len(mapping) != 4:
            raise ValueError(
                f"a mapping is (source, source_type, target, target_type), not {mapping!r}"
            )
        source, _source_type, target, target_type = mapping
        found = fp.get(df, fp.parse(source))
        if found is None:
            log.info("apply_mapping: no field %r; %r is left out", source, target)
            continue
        value, dtype = found
        outputs.append((fp.parse(target), cast_to(value, dtype, target_type)))
    return df.select(*fp.build(outputs))


def types_mapping_ignores(
    mappings: Sequence[Sequence[str]], kinds: Mapping[str, str]
) -> frozenset[str]:
    """The CSV columns whose Glue type ``apply_mapping``'s output cannot depend on.

    A column no mapping reads is dropped; a column guessed ``double`` that every mapping reading
    it casts to ``double`` is ``cast(text as double)`` whether it is a double (cast once more,
    a no-op) or a string (the sample saw a non-integer number, so it cannot be a long). The
    write need not check such a column's guessed type.

    Args:
        mappings: the mapping's 4-tuples, as given to ``apply_mapping``.
        kinds: each CSV column's guessed type (long, double, string).
    """
    reads: dict[str, bool] = {}  # lower-cased name -> every read is a plain cast to double
    for mapping in mappings:
        if len(mapping) != 4:
            return frozenset()  # apply_mapping raises; nothing to spare
        tokens = fp.parse(mapping[0])
        to_double = len(tokens) == 1 and spark_type(mapping[3]) == DoubleType()
        head = tokens[0].lower()
        reads[head] = reads.get(head, True) and to_double
    return frozenset(
        name
        for name, kind in kinds.items()
        if name.lower() not in reads or (kind == "double" and reads[name.lower()])
    )


def select_fields(df: DataFrame, paths: Sequence[str]) -> DataFrame:
    """Keep only the given fields; a nested path keeps its parents with only that child.

    Args:
        df: the frame.
        paths: field paths; ones that do not exist are ignored.
    """
    outputs = []
    for path in paths:
        tokens = fp.parse(path)
        found = fp.get(df, tokens)
        if found is not None and fp.ARRAY not in tokens:
            outputs.append((tokens, found[0]))
    return df.select(*fp.build(outputs))


def drop_fields(df: DataFrame, paths: Sequence[str]) -> DataFrame:
    """Remove the given fields (nested paths and ``list[].field`` too).

    Args:
        df: the frame.
        paths: field paths; ones that do not exist are ignored.
    """
    for path in paths:
        df, _ = fp.rewrite(df, fp.parse(path), lambda name, value, dtype: [])
    return df


def rename_field(df: DataFrame, old_name: str, new_name: str) -> DataFrame:
    """Rename a field; a new path with another parent moves the field there.

    Args:
        df: the frame.
        old_name: the field's path.
        new_name: its new path.
    """
    old, new = fp.parse(old_name), fp.parse(new_name)
    if old[:-1] == new[:-1]:
        renamed, _ = fp.rewrite(df, old, lambda name, value, dtype: [(new[-1], value)])
        return renamed
    found = fp.get(df, old)
    if found is None:
        return df
    # The value must be taken before its old place is dropped: park it in a column first.
    parked = "__glue_moved"
    staged = df.select("*", found[0].alias(parked))
    dropped, _ = fp.rewrite(staged, old, lambda name, value, dtype: [])
    return fp.insert(dropped, new, fp.top(parked)).drop(parked)


def join(left: DataFrame, right: DataFrame, keys1: list[str], keys2: list[str]) -> DataFrame:
    """Inner equality join keeping both sides' fields; a key named alike on both comes once.

    Args:
        left: the first frame.
        right: the second frame.
        keys1: key paths of ``left``.
        keys2: key paths of ``right``, pairwise.

    Raises:
        ValueError: key lists of different lengths, a missing key, or other fields with the
            same name on both sides (rename one first).
    """
    if len(keys1) != len(keys2) or not keys1:
        raise ValueError("join needs the same, non-zero number of keys on both sides")
    shared = {k1 for k1, k2 in zip(keys1, keys2, strict=True) if k1 == k2 and "." not in k1}
    clash = (set(left.columns) & set(right.columns)) - shared
    if clash:
        raise ValueError(f"both frames have fields {sorted(clash)}; rename one side first")

    def qualified(alias: str, df: DataFrame, path: str) -> Column:
        tokens = fp.parse(path)
        if fp.ARRAY in tokens or fp.type_at(df.schema, tokens) is None:
            raise ValueError(f"join key {path!r} is not a field of its frame")
        column = F.col(f"{alias}.{fp.quote(tokens[0])}")
        for token in tokens[1:]:
            column = column.getField(token)
        return column

    # Aliases keep the sides apart even when both frames come from the same DataFrame.
    condition = F.lit(True)
    for k1, k2 in zip(keys1, keys2, strict=True):
        condition = condition & (qualified("l", left, k1) == qualified("r", right, k2))
    joined = left.alias("l").join(right.alias("r"), condition, "inner")
    columns = [F.col(f"l.{fp.quote(c)}").alias(c) for c in left.columns]
    columns += [F.col(f"r.{fp.quote(c)}").alias(c) for c in right.columns if c not in shared]
    return joined.select(*columns)


def _csv_schema(df: DataFrame, value: Column, sep: str) -> StructType:
    width = df.agg(F.max(F.size(F.split(value, re.escape(sep))))).collect()[0][0] or 1
    schema = StructType()
    for i in range(width):
        schema = schema.add(f"_c{i}", StringType())
    return schema


def unbox(df: DataFrame, path: str, fmt: str, options: dict[str, Any]) -> DataFrame:
    """Parse a string field holding JSON or CSV into a struct, in place.

    Args:
        df: the frame.
        path: the string field.
        fmt: ``json`` or ``csv``.
        options: ``withSchema`` (a StructType's JSON); CSV ``separator``, ``quoteChar``,
            ``escaper``. Without a schema, JSON's is inferred from all values and CSV's is
            string fields ``_c0``, ``_c1`` ... as many as the widest value has.

    Raises:
        ValueError: the field is missing or not a string, or an unsupported format.
    """
    tokens = fp.parse(path)
    found = fp.get(df, tokens)
    if found is None or not isinstance(found[1], StringType):
        raise ValueError(f"unbox needs a string field; {path!r} is not one")
    given = options.get("withSchema")
    schema: Any = StructType.fromJson(json.loads(given)) if given else None
    kind = fmt.lower()
    if kind == "json":
        if schema is None:
            schema = _records.infer_schema(df, found[0], _records.loads_json, None)
        if schema is None:
            return df
        if not isinstance(schema, StructType | ArrayType):
            raise ValueError(f"unbox: {path!r} holds JSON scalars, not objects or arrays")

        def parse(value: Column) -> Column:
            return F.from_json(value, schema)

    elif kind == "csv":
        sep = str(options.get("separator", ","))
        if schema is None:
            schema = _csv_schema(df, found[0], sep)
        quote = str(options.get("quoteChar", '"'))
        csv_options = {"sep": sep, "quote": quote, "escape": str(options.get("escaper", quote))}
        ddl = ", ".join(f"{fp.quote(f.name)} {f.dataType.simpleString()}" for f in schema.fields)

        def parse(value: Column) -> Column:
            return F.from_csv(value, ddl, csv_options)

    else:
        raise ValueError(f"unbox supports json and csv, not {fmt!r}")
    unboxed, _ = fp.rewrite(df, tokens, lambda name, value, dtype: [(name, parse(value))])
    return unboxed


def drop_null_fields(df: DataFrame) -> DataFrame:
    """Remove the fields (through structs) that are null in every record.

    Args:
        df: the frame.
    """
    leaves = [tokens for tokens, _ in fp.leaf_paths(df.schema)]
    if not leaves:
        return df
    counts = []
    for i, tokens in enumerate(leaves):
        found = fp.get(df, tokens)
        assert found is not None
        counts.append(F.count(found[0]).alias(f"n{i}"))
    row = df.agg(*counts).collect()[0]
    for i, tokens in enumerate(leaves):
        if row[f"n{i}"] == 0:
            df, _ = fp.rewrite(df, tokens, lambda name, value, dtype: [])
    return df


def split_condition(df: DataFrame, comparison_dict: dict[str, dict[str, Any]]) -> Column:
    """The condition of split_rows: every comparison holds (null counts as false).

    Args:
        df: the frame.
        comparison_dict: path -> {comparator: value}, e.g. ``{"age": {">": 10}}``.

    Raises:
        ValueError: an unknown comparator or field.
    """
    condition = F.lit(True)
    for path, comparisons in comparison_dict.items():
        found = fp.get(df, fp.parse(path))
        if found is None:
            raise ValueError(f"split_rows: no field {path!r}")
        for op, value in comparisons.items():
            if op not in _COMPARATORS:
                raise ValueError(f"split_rows: unknown comparator {op!r}")
            condition = condition & _COMPARATORS[op](found[0], F.lit(value))
    return F.coalesce(condition, F.lit(False))


def merge(source: DataFrame, stage: DataFrame, primary_keys: Sequence[str]) -> DataFrame:
    """The staging records, plus the source records whose keys the staging frame lacks.

    Args:
        source: the frame being updated.
        stage: the staging frame.
        primary_keys: top-level key fields.
    """
    keys = stage.select(*[fp.top(k) for k in primary_keys])
    kept = source.join(keys, list(primary_keys), "left_anti")
    return stage.unionByName(kept, allowMissingColumns=True)
