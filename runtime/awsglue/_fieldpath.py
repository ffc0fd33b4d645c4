"""Field paths as Glue writes them, and rewriting nested columns with public Column APIs.

A path is dot-separated (``address.city``); a name that itself contains dots is wrapped in
backticks (```this.old.name```), and ``[]`` after a name steps into an array's elements
(``myList[].price``). See the AWS pages "ApplyMapping class" and "DynamicFrame class"
(rename_field, resolveChoice) under docs.aws.amazon.com/glue/latest/dg/.

Nested values are rewritten by rebuilding the structs on the path with ``F.struct`` and arrays
with ``F.transform``, so the same code runs on classic Spark and on Spark Connect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

__all__ = [
    "Field",
    "build",
    "flatten",
    "get",
    "insert",
    "leaf_paths",
    "parse",
    "quote",
    "rewrite",
    "top",
    "type_at",
]

ARRAY = "[]"
Field = tuple[str, Column, DataType]
# leaf_fn(name, value, type) -> the fields that replace the leaf: [] drops it, one renames or
# changes it, several split it (make_cols).
LeafFn = Callable[[str, Column, DataType], list[tuple[str, Column]]]


def parse(path: str) -> list[str]:
    """Split a Glue field path into names, with ``"[]"`` tokens for array steps.

    Args:
        path: ``a.b``, ```a.b`.c``, ``list[].price`` ... (a doubled backtick inside backticks
            is a literal backtick).

    Raises:
        ValueError: unbalanced backticks or an empty path.
    """
    tokens: list[str] = []
    current: list[str] = []
    started = False
    quoted = False
    i = 0

    def flush() -> None:
        nonlocal current, started
        if current or started:
            tokens.append("".join(current))
        current, started = [], False

    while i < len(path):
        ch = path[i]
        if quoted:
            if ch == "`" and path[i + 1 : i + 2] == "`":
                current.append("`")
                i += 2
                continue
            if ch == "`":
                quoted = False
            else:
                current.append(ch)
            i += 1
            continue
        if ch == "`":
            quoted = started = True
        elif ch == ".":
            flush()
        elif path.startswith(ARRAY, i):
            flush()
            tokens.append(ARRAY)
            i += 1
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"unbalanced backticks in field path {path!r}")
    flush()
    if not tokens:
        raise ValueError("empty field path")
    return tokens


def quote(name: str) -> str:
    """Quote one field name for Spark's column parser (backticks, doubled inside).

    Args:
        name: a top-level column name, dots and all.
    """
    return "`" + name.replace("`", "``") + "`"


def top(name: str) -> Column:
    """The top-level column called ``name`` (dots in the name are part of it).

    Args:
        name: the column name.
    """
    return F.col(quote(name))


def _child(struct: StructType, name: str) -> str | None:
    # Exact match first; Spark resolves names case-insensitively by default, and so do we.
    for field in struct.fields:
        if field.name == name:
            return field.name
    lowered = name.lower()
    for field in struct.fields:
        if field.name.lower() == lowered:
            return field.name
    return None


def type_at(dtype: DataType, tokens: list[str]) -> DataType | None:
    """The type found at ``tokens`` under ``dtype`` (None when the path does not exist).

    Args:
        dtype: a struct (the frame's schema) or any nested type.
        tokens: parsed path.
    """
    if not tokens:
        return dtype
    head, rest = tokens[0], tokens[1:]
    if isinstance(dtype, ArrayType):
        inner = type_at(dtype.elementType, rest if head == ARRAY else tokens)
        return None if inner is None else ArrayType(inner, True)
    if head == ARRAY:
        return None
    if isinstance(dtype, StructType):
        name = _child(dtype, head)
        return None if name is None else type_at(dtype[name].dataType, rest)
    if isinstance(dtype, MapType):
        return type_at(dtype.valueType, rest)
    return None


def _value_at(column: Column, dtype: DataType, tokens: list[str]) -> Column:
    if not tokens:
        return column
    head, rest = tokens[0], tokens[1:]
    if isinstance(dtype, ArrayType):
        inner_tokens = rest if head == ARRAY else tokens
        element = dtype.elementType
        return F.transform(column, lambda e: _value_at(e, element, inner_tokens))
    if isinstance(dtype, StructType):
        name = _child(dtype, head)
        assert name is not None  # type_at was checked first
        return _value_at(column.getField(name), dtype[name].dataType, rest)
    assert isinstance(dtype, MapType)  # type_at was checked first
    # A map: the token is a key.
    return _value_at(column.getItem(head), dtype.valueType, rest)


def get(df: DataFrame, tokens: list[str]) -> tuple[Column, DataType] | None:
    """The value at a path, and its type; None when the frame has no such field.

    Args:
        df: the frame.
        tokens: parsed path; a path through an array yields an array of the inner values.
    """
    schema = df.schema
    name = _child(schema, tokens[0])
    if name is None:
        return None
    dtype = type_at(schema[name].dataType, tokens[1:])
    if dtype is None:
        return None
    return _value_at(top(name), schema[name].dataType, tokens[1:]), dtype


def fields(df: DataFrame) -> list[Field]:
    """The frame's top-level fields as (name, column, type).

    Args:
        df: the frame.
    """
    return [(f.name, top(f.name), f.dataType) for f in df.schema.fields]


def _struct_fields(column: Column, struct: StructType) -> list[Field]:
    return [(f.name, column.getField(f.name), f.dataType) for f in struct.fields]


def _keep_null(column: Column, rebuilt: Column) -> Column:
    # F.struct is never null; a null struct must stay null after its fields are rewritten.
    return F.when(column.isNull(), F.lit(None)).otherwise(rebuilt)


def _rewrite_fields(
    items: list[Field], tokens: list[str], leaf_fn: LeafFn, found: list[bool]
) -> list[tuple[str, Column]]:
    head, rest = tokens[0], tokens[1:]
    target = _child(StructType([StructField(name, dtype) for name, _, dtype in items]), head)
    out: list[tuple[str, Column]] = []
    for name, column, dtype in items:
        if name != target:
            out.append((name, column))
        elif not rest:
            found[0] = True
            out.extend(leaf_fn(name, column, dtype))
        else:
            out.append((name, _rewrite_value(column, dtype, rest, leaf_fn, found)))
    return out


def _rewrite_value(
    column: Column, dtype: DataType, tokens: list[str], leaf_fn: LeafFn, found: list[bool]
) -> Column:
    head = tokens[0]
    if isinstance(dtype, ArrayType):
        rest = tokens[1:] if head == ARRAY else tokens
        element = dtype.elementType
        if not rest:
            # The path names the elements themselves (``list[]``): rewrite each one.
            found[0] = True

            def each(e: Column) -> Column:
                replaced = leaf_fn("", e, element)
                if len(replaced) != 1:
                    raise ValueError("array elements can be changed, not dropped or split")
                return replaced[0][1]

            return F.transform(column, each)
        if type_at(element, rest) is None:
            return column
        return F.transform(column, lambda e: _rewrite_value(e, element, rest, leaf_fn, found))
    if isinstance(dtype, StructType) and head != ARRAY:
        rebuilt = _rewrite_fields(_struct_fields(column, dtype), tokens, leaf_fn, found)
        return _keep_null(column, F.struct(*[c.alias(n) for n, c in rebuilt]))
    return column


def rewrite(df: DataFrame, tokens: list[str], leaf_fn: LeafFn) -> tuple[DataFrame, bool]:
    """Replace the field at a path by what ``leaf_fn`` returns, keeping everything else.

    Args:
        df: the frame.
        tokens: parsed path.
        leaf_fn: called with (name, value, type) of the field; returns its replacements.

    Returns:
        The new frame, and whether the path existed (the frame is unchanged if not).
    """
    found = [False]
    new = _rewrite_fields(fields(df), tokens, leaf_fn, found)
    if not found[0]:
        return df, False
    return df.select(*[c.alias(n) for n, c in new]), True


def build(outputs: list[tuple[list[str], Column]]) -> list[Column]:
    """Columns for a select that places each value at its (possibly nested) target path.

    Args:
        outputs: (target tokens, value) in output order; ``a.b`` and ``a.c`` share struct ``a``.

    Raises:
        ValueError: a target steps into an array, or is both a value and a struct.
    """
    tree: dict[str, object] = {}
    for tokens, column in outputs:
        if ARRAY in tokens:
            raise ValueError("a target path cannot step into an array ([])")
        node = tree
        for token in tokens[:-1]:
            child = node.setdefault(token, {})
            if not isinstance(child, dict):
                raise ValueError(  # noqa: TRY004 - a bad path value, not a bad argument type
                    f"target {'.'.join(tokens)!r} nests under a non-struct field"
                )
            node = child
        if isinstance(node.get(tokens[-1]), dict):
            raise ValueError(f"target {'.'.join(tokens)!r} is also a struct")  # noqa: TRY004
        node[tokens[-1]] = column

    def emit(node: dict[str, object]) -> list[Column]:
        out = []
        for name, value in node.items():
            column = F.struct(*emit(value)) if isinstance(value, dict) else value
            assert isinstance(column, Column)
            out.append(column.alias(name))
        return out

    return emit(tree)


def insert(df: DataFrame, tokens: list[str], value: Column) -> DataFrame:
    """Put a value at a path, creating structs on the way, replacing a field already there.

    Args:
        df: the frame.
        tokens: parsed target path (no ``[]``).
        value: the value.
    """

    def place(items: list[Field], path: list[str]) -> list[tuple[str, Column]]:
        head, rest = path[0], path[1:]
        out: list[tuple[str, Column]] = []
        done = False
        for name, column, dtype in items:
            if name == head and not rest:
                out.append((name, value))
                done = True
            elif name == head and isinstance(dtype, StructType):
                inner = place(_struct_fields(column, dtype), rest)
                out.append((name, F.struct(*[c.alias(n) for n, c in inner])))
                done = True
            else:
                out.append((name, column))
        if not done:
            out.append((head, build([(rest, value)])[0] if rest else value))
        return out

    if ARRAY in tokens:
        raise ValueError("a target path cannot step into an array ([])")
    return df.select(*[c.alias(n) for n, c in place(fields(df), tokens)])


def leaf_paths(
    dtype: StructType, prefix: list[str] | None = None
) -> Iterator[tuple[list[str], DataType]]:
    """Every non-struct field reachable through structs, as (tokens, type).

    Args:
        dtype: the schema (or a nested struct).
        prefix: tokens of ``dtype`` itself.
    """
    for field in dtype.fields:
        path = [*(prefix or []), field.name]
        if isinstance(field.dataType, StructType):
            yield from leaf_paths(field.dataType, path)
        else:
            yield path, field.dataType


def flatten(df: DataFrame) -> list[Field]:
    """Every non-struct field through structs, named with dots (``address.city``).

    Args:
        df: the frame.
    """
    out: list[Field] = []

    def walk(name: str, column: Column, dtype: DataType) -> None:
        if isinstance(dtype, StructType) and dtype.fields:
            for child in dtype.fields:
                walk(f"{name}.{child.name}", column.getField(child.name), child.dataType)
        else:
            out.append((name, column, dtype))

    for name, column, dtype in fields(df):
        walk(name, column, dtype)
    return out
