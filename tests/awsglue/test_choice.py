"""resolveChoice: cast, project, make_cols, make_struct on emulated choice fields."""

from __future__ import annotations

from typing import Any

import pytest
from awsglue.dynamicframe import DynamicFrame

# "price" is what Spark reads for a field whose records disagree: text of longs, doubles and
# strings. "name" is a plain string field, "info.code" a choice inside a struct.
SCHEMA = (
    "id long, price string, name string, info struct<code:string>, items array<struct<p:string>>"
)
DATA = [
    (1, "100", "7", ("1",), [("1.5",)]),
    (2, "$100.00", "bob", ("A",), [("x",)]),
    (3, "2.5", "carol", ("2",), []),
    (4, None, "dave", None, None),
]


@pytest.fixture
def frame(spark: Any, glue_context: Any) -> DynamicFrame:
    return DynamicFrame.fromDF(spark.createDataFrame(DATA, SCHEMA), glue_context, "choices")


def column(frame: DynamicFrame, name: str) -> list[Any]:
    return [r[name] for r in frame.toDF().orderBy("id").collect()]


def test_cast_converts_or_nulls(frame: DynamicFrame) -> None:
    cast = frame.resolveChoice(specs=[("price", "cast:double")])
    assert cast.toDF().schema["price"].dataType.simpleString() == "double"
    assert column(cast, "price") == [100.0, None, 2.5, None]


def test_project_keeps_only_values_of_the_type(frame: DynamicFrame) -> None:
    longs = frame.resolveChoice(specs=[("price", "project:long")])
    assert column(longs, "price") == [100, None, None, None]
    strings = frame.resolveChoice(specs=[("price", "project:string")])
    assert column(strings, "price") == [None, "$100.00", None, None]


def test_project_on_a_plain_field_is_a_cast(frame: DynamicFrame) -> None:
    # "id" is a real long column, not a choice: project:string converts its values.
    projected = frame.resolveChoice(specs=[("id", "project:string")])
    assert column(projected, "id") == ["1", "2", "3", "4"]


def test_make_cols_splits_by_type(frame: DynamicFrame) -> None:
    split = frame.resolveChoice(specs=[("price", "make_cols")])
    df = split.toDF()
    assert df.columns == [
        "id",
        "price_long",
        "price_double",
        "price_string",
        "name",
        "info",
        "items",
    ]
    assert column(split, "price_long") == [100, None, None, None]
    assert column(split, "price_double") == [None, None, 2.5, None]
    assert column(split, "price_string") == [None, "$100.00", None, None]


def test_make_cols_on_a_nested_choice(frame: DynamicFrame) -> None:
    split = frame.resolveChoice(specs=[("info.code", "make_cols")])
    assert split.toDF().schema["info"].dataType.simpleString() == (
        "struct<code_long:bigint,code_string:string>"
    )
    assert [r and r.asDict() for r in column(split, "info")] == [
        {"code_long": 1, "code_string": None},
        {"code_long": None, "code_string": "A"},
        {"code_long": 2, "code_string": None},
        None,
    ]


def test_make_struct(frame: DynamicFrame) -> None:
    made = frame.resolveChoice(specs=[("price", "make_struct")])
    assert made.toDF().schema["price"].dataType.simpleString() == (
        "struct<long:bigint,double:double,string:string>"
    )
    assert column(made, "price")[1].asDict() == {"long": None, "double": None, "string": "$100.00"}


def test_choice_option_applies_to_every_choice_field_only(frame: DynamicFrame) -> None:
    resolved = frame.resolveChoice(choice="make_cols")
    columns = resolved.toDF().columns
    # price, name and info.code hold several types; id is not a string at all.
    assert "id" in columns and "price_long" in columns and "name_long" in columns
    assert resolved.toDF().schema["info"].dataType.simpleString() == (
        "struct<code_long:bigint,code_string:string>"
    )


def test_cast_inside_an_array(frame: DynamicFrame) -> None:
    cast = frame.resolveChoice(specs=[("items[].p", "cast:double")])
    assert [r and [e["p"] for e in r] for r in column(cast, "items")] == [[1.5], [None], [], None]


def test_bad_specs_are_refused(frame: DynamicFrame) -> None:
    with pytest.raises(ValueError, match="not both"):
        frame.resolveChoice(specs=[("price", "cast:long")], choice="make_cols")
    with pytest.raises(ValueError, match="Data Catalog"):
        frame.resolveChoice(specs=[("price", "match_catalog")])
    with pytest.raises(ValueError, match="Data Catalog"):
        frame.resolveChoice(database="db", table_name="t")
    with pytest.raises(ValueError, match="unknown resolveChoice action"):
        frame.resolveChoice(specs=[("price", "guess")])
