"""resolveChoice on a DataFrame-backed frame, where a "choice" is emulated.

Glue types a field whose records disagree (``1`` here, ``"n/a"`` there) as a choice. Spark's
CSV/JSON readers make such a field a string holding each value's text instead, so a string
field whose non-null values look like more than one type (long, double, string) is treated as
``choice(<those types>)``. The actions follow the AWS pages "ResolveChoice class" and
"DynamicFrame class" (docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-
transforms-ResolveChoice.html):

- ``cast:<type>``: Spark's cast of the whole field (values that do not convert become null).
- ``project:<type>``: on a choice, keep only the values of that type, others become null; on a
  plain field, a cast.
- ``make_cols``: on a choice, one field per type, ``<name>_<type>``, in place of the field.
- ``make_struct``: on a choice, a struct with one field per type.
- ``match_catalog``: needs the Data Catalog, which does not exist here.

make_cols/make_struct/project leave a field that is not a choice as it is (cast for project).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import DataType, StringType

from awsglue import _fieldpath as fp
from awsglue.gluetypes import cast_to, spark_type

__all__ = ["DOUBLE_RE", "LONG_RE", "classify", "resolve_choice"]

# Integers that surely fit a long (19 digits may not); longer ones count as double.
LONG_RE = r"^\s*[+-]?\d{1,18}\s*$"
DOUBLE_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
# The order make_cols/make_struct emit the types in.
_ORDER = ["long", "double", "string"]


def classify(value: Column) -> Column:
    """The emulated choice member of each string value: long, double or string.

    Args:
        value: a string column.
    """
    return (
        F.when(value.isNull(), F.lit(None))
        .when(value.rlike(LONG_RE), F.lit("long"))
        .when(value.rlike(DOUBLE_RE), F.lit("double"))
        .otherwise(F.lit("string"))
    )


def _member(value: Column, kind: str) -> Column:
    # The value as the member type, null when it is of another member type.
    converted = value if kind == "string" else value.cast(kind)
    return F.when(classify(value) == kind, converted)


def _choice_types(df: DataFrame, paths: list[list[str]]) -> dict[int, list[str]]:
    # One aggregation for all candidate fields: the set of member types each one holds.
    columns = []
    for i, tokens in enumerate(paths):
        found = fp.get(df, tokens)
        assert found is not None
        columns.append(F.collect_set(classify(found[0])).alias(f"c{i}"))
    if not columns:
        return {}
    row = df.agg(*columns).collect()[0]
    return {i: sorted(row[f"c{i}"], key=_ORDER.index) for i in range(len(paths))}


def _apply(df: DataFrame, tokens: list[str], action: str, kinds: list[str] | None) -> DataFrame:
    """Resolve one field; ``kinds`` are its member types when it is a choice."""
    verb, _, type_name = action.partition(":")
    verb = verb.strip().lower()
    is_choice = kinds is not None and len(kinds) > 1

    def leaf(name: str, value: Column, dtype: DataType) -> list[tuple[str, Column]]:
        if verb == "cast":
            return [(name, cast_to(value, dtype, type_name))]
        if verb == "project":
            if not is_choice:
                return [(name, cast_to(value, dtype, type_name))]
            target = spark_type(type_name)
            kind = target.typeName() if target is not None else type_name.lower()
            kind = {"integer": "long", "float": "double", "int": "long"}.get(kind, kind)
            return [(name, cast_to(_member(value, kind), StringType(), type_name))]
        if not is_choice:
            return [(name, value)]
        assert kinds is not None
        if verb == "make_cols":
            return [(f"{name}_{kind}", _member(value, kind)) for kind in kinds]
        return [(name, F.struct(*[_member(value, k).alias(k) for k in kinds]))]

    if verb not in ("cast", "project", "make_cols", "make_struct"):
        if verb == "match_catalog":
            raise ValueError(
                "resolveChoice 'match_catalog' needs the AWS Glue Data Catalog, which this "
                "runtime does not have; use cast:<type> or project:<type> specs"
            )
        raise ValueError(f"unknown resolveChoice action {action!r}")
    if verb in ("cast", "project") and not type_name:
        raise ValueError(f"resolveChoice action {action!r} needs a type ({verb}:<type>)")
    if verb in ("make_cols", "make_struct") and fp.ARRAY in tokens:
        raise ValueError(f"{verb} cannot resolve a field inside an array")
    new, found = fp.rewrite(df, tokens, leaf)
    return new if found else df


def resolve_choice(df: DataFrame, specs: list[tuple[str, str]] | None, choice: str) -> DataFrame:
    """Apply resolveChoice ``specs`` (or one ``choice`` action to every choice field).

    Args:
        df: the frame.
        specs: (path, action) pairs, or None.
        choice: the action for all choice fields when ``specs`` is None ("" for none).

    Raises:
        ValueError: both or an unknown action; match_catalog.
    """
    if specs and choice:
        raise ValueError("resolveChoice takes specs or choice, not both")
    if specs:
        parsed = [(fp.parse(path), action) for path, action in specs]
    elif choice:
        # Every string field through structs is a candidate; only real choices are touched.
        parsed = [
            (tokens, choice)
            for tokens, dtype in fp.leaf_paths(df.schema)
            if isinstance(dtype, StringType)
        ]
    else:
        return df
    # Choice detection needs the data, once, for the string fields outside arrays.
    candidates = [
        tokens
        for tokens, action in parsed
        if (choice or not action.lower().startswith("cast"))
        and fp.ARRAY not in tokens
        and isinstance(fp.type_at(df.schema, tokens), StringType)
    ]
    kinds = _choice_types(df, candidates)
    by_path = {tuple(tokens): kinds[i] for i, tokens in enumerate(candidates)}
    for tokens, action in parsed:
        if choice and len(by_path.get(tuple(tokens), [])) < 2:
            continue  # choice= touches choice fields only
        df = _apply(df, tokens, action, by_path.get(tuple(tokens)))
    return df
