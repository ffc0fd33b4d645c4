"""DynamicFrame's methods on small nested data, checked by reading the rows back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection

PEOPLE_SCHEMA = (
    "id long, name struct<first:string,last:string>, `contact.email` string, "
    "address struct<city:string,`zip.code`:string>, tags array<string>, "
    "orders array<struct<sku:string,qty:int>>, score string"
)
PEOPLE = [
    (1, ("Ada", "Lovelace"), "ada@x", ("London", "N1"), ["math", "poetry"], [("s1", 2)], "10"),
    (2, ("Alan", "Turing"), "alan@x", ("Wilmslow", "SK9"), [], [("s2", 1), ("s3", 5)], "n/a"),
    (3, ("Grace", "Hopper"), None, None, None, [("s4", 7)], "3.5"),
]


@pytest.fixture
def people(spark: Any, glue_context: Any) -> DynamicFrame:
    return DynamicFrame.fromDF(spark.createDataFrame(PEOPLE, PEOPLE_SCHEMA), glue_context, "people")


def rows(frame: DynamicFrame, order: str = "id") -> list[dict[str, Any]]:
    return [r.asDict(recursive=True) for r in frame.toDF().orderBy(order).collect()]


def test_fromdf_todf_count_and_schema(people: DynamicFrame) -> None:
    assert isinstance(people.toDF(), type(people.toDF()))
    assert people.count() == 3
    assert people.schema().simpleString() == people.toDF().schema.simpleString()
    assert people.name == "people"


def test_print_schema_uses_glue_layout(
    people: DynamicFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    people.select_fields(["id", "name", "orders"]).printSchema()
    assert capsys.readouterr().out.splitlines() == [
        "root",
        "|-- id: long",
        "|-- name: struct",
        "|    |-- first: string",
        "|    |-- last: string",
        "|-- orders: array",
        "|    |-- element: struct",
        "|    |    |-- sku: string",
        "|    |    |-- qty: int",
    ]


def test_show_prints_json_records(people: DynamicFrame, capsys: pytest.CaptureFixture[str]) -> None:
    people.select_fields(["id", "name.first"]).show(2)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed) == 2
    assert {p["id"] for p in printed} <= {1, 2, 3}
    assert all(set(p) == {"id", "name"} and set(p["name"]) == {"first"} for p in printed)


def test_apply_mapping_nested_sources_backticks_and_nested_targets(people: DynamicFrame) -> None:
    mapped = people.apply_mapping(
        [
            ("id", "long", "id", "String"),
            ("name.first", "string", "first_name", "string"),
            ("`contact.email`", "string", "contact.mail", "string"),
            ("address.`zip.code`", "string", "zip", "string"),
            ("score", "string", "score", "double"),
            ("no.such.field", "string", "ghost", "string"),
        ]
    )
    assert mapped.toDF().schema.simpleString() == (
        "struct<id:string,first_name:string,contact:struct<mail:string>,zip:string,score:double>"
    )
    assert rows(mapped) == [
        {"id": "1", "first_name": "Ada", "contact": {"mail": "ada@x"}, "zip": "N1", "score": 10.0},
        {
            "id": "2",
            "first_name": "Alan",
            "contact": {"mail": "alan@x"},
            "zip": "SK9",
            "score": None,
        },
        {"id": "3", "first_name": "Grace", "contact": {"mail": None}, "zip": None, "score": 3.5},
    ]


def test_apply_mapping_rejects_short_tuples(people: DynamicFrame) -> None:
    with pytest.raises(ValueError, match="source_type"):
        people.apply_mapping([("id", "long", "id")])  # type: ignore[list-item]


def test_select_fields_keeps_nested_parents(people: DynamicFrame) -> None:
    selected = people.select_fields(["id", "name.last", "`contact.email`", "missing"])
    assert selected.toDF().columns == ["id", "name", "contact.email"]
    assert rows(selected)[0] == {"id": 1, "name": {"last": "Lovelace"}, "contact.email": "ada@x"}


def test_drop_fields_top_level_nested_dotted_and_in_arrays(people: DynamicFrame) -> None:
    dropped = people.drop_fields(["name.last", "`contact.email`", "orders[].qty", "tags", "nope"])
    assert dropped.toDF().schema.simpleString() == (
        "struct<id:bigint,name:struct<first:string>,address:struct<city:string,zip.code:string>,"
        "orders:array<struct<sku:string>>,score:string>"
    )
    got = rows(dropped)
    assert got[1]["orders"] == [{"sku": "s2"}, {"sku": "s3"}]
    # A null struct stays null after its fields are rewritten.
    assert got[2]["address"] is None


def test_rename_field_dotted_nested_and_moved(people: DynamicFrame) -> None:
    renamed = (
        people.rename_field("`contact.email`", "email")
        .rename_field("name.first", "name.given")
        .rename_field("address.city", "city")
    )
    df = renamed.toDF()
    assert "email" in df.columns and "contact.email" not in df.columns
    assert df.schema["name"].dataType.simpleString() == "struct<given:string,last:string>"
    assert df.schema["address"].dataType.simpleString() == "struct<zip.code:string>"
    got = rows(renamed)
    assert [(r["email"], r["name"]["given"], r["city"]) for r in got] == [
        ("ada@x", "Ada", "London"),
        ("alan@x", "Alan", "Wilmslow"),
        (None, "Grace", None),
    ]


def test_filter_sees_records_as_dicts(people: DynamicFrame) -> None:
    london = people.filter(lambda r: r["address"] is not None and r["address"]["city"] == "London")
    assert [r["id"] for r in rows(london)] == [1]
    many = people.filter(lambda r: len(r["orders"]) > 1)
    assert [r["id"] for r in rows(many)] == [2]


def test_map_adds_changes_and_drops_records(people: DynamicFrame) -> None:
    def f(rec: dict[str, Any]) -> dict[str, Any] | None:
        if rec["id"] == 3:
            return None
        rec["name"]["first"] = rec["name"]["first"].upper()
        rec["total_qty"] = sum(o["qty"] for o in rec["orders"])
        rec["ratio"] = rec["id"] / 2
        del rec["tags"]
        return rec

    mapped = people.map(f)
    schema = mapped.toDF().schema
    # Input types are kept where the values still fit them; new fields get Python's types.
    assert schema["id"].dataType.simpleString() == "bigint"
    assert schema["orders"].dataType.simpleString() == "array<struct<sku:string,qty:int>>"
    assert schema["total_qty"].dataType.simpleString() == "bigint"
    assert schema["ratio"].dataType.simpleString() == "double"
    assert "tags" not in schema.names
    got = rows(mapped)
    assert [(r["id"], r["name"]["first"], r["total_qty"], r["ratio"]) for r in got] == [
        (1, "ADA", 2, 0.5),
        (2, "ALAN", 6, 1.0),
    ]


def test_map_records_with_different_fields_share_one_schema(people: DynamicFrame) -> None:
    mapped = people.map(lambda r: {"id": r["id"], **({"extra": "x"} if r["id"] == 2 else {})})
    assert rows(mapped) == [
        {"id": 1, "extra": None},
        {"id": 2, "extra": "x"},
        {"id": 3, "extra": None},
    ]


def test_repartition_and_coalesce(people: DynamicFrame) -> None:
    assert people.repartition(3).getNumPartitions() == 3
    assert people.repartition(3).coalesce(1).getNumPartitions() == 1
    assert people.repartition(3).count() == 3


def test_join_keeps_both_keys_and_merges_same_named(
    spark: Any, glue_context: Any, people: DynamicFrame
) -> None:
    visits = DynamicFrame.fromDF(
        spark.createDataFrame(
            [(1, "mon"), (1, "tue"), (3, "wed"), (9, "thu")], "person_id long, day string"
        ),
        glue_context,
    )
    joined = people.select_fields(["id", "name.first"]).join(["id"], ["person_id"], visits)
    assert joined.toDF().columns == ["id", "name", "person_id", "day"]
    got = sorted((r["id"], r["name"]["first"], r["person_id"], r["day"]) for r in rows(joined))
    assert got == [(1, "Ada", 1, "mon"), (1, "Ada", 1, "tue"), (3, "Grace", 3, "wed")]

    same = DynamicFrame.fromDF(
        spark.createDataFrame([(2, "b")], "id long, extra string"), glue_context
    )
    once = people.select_fields(["id"]).join("id", "id", same)
    assert once.toDF().columns == ["id", "extra"]
    assert rows(once) == [{"id": 2, "extra": "b"}]


def test_join_refuses_clashing_fields(people: DynamicFrame) -> None:
    with pytest.raises(ValueError, match="rename one side"):
        people.join(["id"], ["id"], people.rename_field("score", "s2"))


def test_unbox_json_infers_the_schema(spark: Any, glue_context: Any) -> None:
    df = spark.createDataFrame(
        [(1, '{"a": 1, "b": {"c": "x"}}'), (2, '{"a": 2, "d": [1.5]}'), (3, None)],
        "id long, payload string",
    )
    unboxed = DynamicFrame.fromDF(df, glue_context).unbox("payload", "json")
    payload = unboxed.toDF().schema["payload"].dataType
    assert payload.simpleString() == "struct<a:bigint,b:struct<c:string>,d:array<double>>"
    got = rows(unboxed)
    assert got[0]["payload"] == {"a": 1, "b": {"c": "x"}, "d": None}
    assert got[1]["payload"] == {"a": 2, "b": None, "d": [1.5]}
    assert got[2]["payload"] is None


def test_unbox_csv_with_separator(spark: Any, glue_context: Any) -> None:
    df = spark.createDataFrame([(1, "a|b|c"), (2, "d|e")], "id long, line string")
    unboxed = DynamicFrame.fromDF(df, glue_context).unbox("line", "csv", separator="|")
    assert [r["line"] for r in rows(unboxed)] == [
        {"_c0": "a", "_c1": "b", "_c2": "c"},
        {"_c0": "d", "_c1": "e", "_c2": None},
    ]


def test_drop_null_fields_top_level_and_nested(spark: Any, glue_context: Any) -> None:
    df = spark.createDataFrame(
        [(1, None, (None, "x")), (2, None, (None, None))],
        "id long, empty string, s struct<gone:string,kept:string>",
    )
    cleaned = DynamicFrame.fromDF(df, glue_context).drop_null_fields()
    assert cleaned.toDF().schema.simpleString() == "struct<id:bigint,s:struct<kept:string>>"


def test_split_fields_as_in_the_aws_example(spark: Any, glue_context: Any) -> None:
    df = spark.createDataFrame(
        [("TX_WAREHOUSE", 220, 560, 350), ("CA_WAREHOUSE", 34, 123, 42)],
        "warehouse_loc string, `data.strawberry` int, `data.pineapple` int, `data.mango` int",
    )
    split = DynamicFrame.fromDF(df, glue_context).split_fields(
        ["`data.strawberry`", "`data.pineapple`"], "a", "b"
    )
    assert isinstance(split, DynamicFrameCollection)
    assert split.keys() == ["a", "b"]
    assert split["a"].toDF().columns == ["data.strawberry", "data.pineapple"]
    assert split.select("b").toDF().columns == ["warehouse_loc", "data.mango"]
    assert sorted(r["data.mango"] for r in split["b"].toDF().collect()) == [42, 350]


def test_split_rows(people: DynamicFrame) -> None:
    split = people.split_rows({"id": {">": 1, "<=": 2}}, "middle", "rest")
    assert [r["id"] for r in rows(split["middle"])] == [2]
    assert [r["id"] for r in rows(split["rest"])] == [1, 3]


def test_unnest_names_struct_fields_with_dots(people: DynamicFrame) -> None:
    flat = people.select_fields(["id", "name", "address"]).unnest()
    assert flat.toDF().columns == [
        "id",
        "name.first",
        "name.last",
        "address.city",
        "address.zip.code",
    ]
    assert rows(flat)[0]["address.city"] == "London"


def test_merge_dynamic_frame_replaces_by_primary_key(spark: Any, glue_context: Any) -> None:
    source = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "old"), (2, "keep"), (2, "keep-dup")], "id long, v string"),
        glue_context,
    )
    stage = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "new"), (3, "added")], "id long, v string"), glue_context
    )
    merged = source.mergeDynamicFrame(stage, ["id"])
    assert sorted((r["id"], r["v"]) for r in merged.toDF().collect()) == [
        (1, "new"),
        (2, "keep"),
        (2, "keep-dup"),
        (3, "added"),
    ]


def test_collection_api(people: DynamicFrame) -> None:
    dfc = people.split_fields(["id"], "ids", "others")
    assert len(dfc) == 2 and "ids" in dfc and list(dfc) == ["ids", "others"]
    assert [f.toDF().columns for f in dfc.values()] == [
        ["id"],
        [c for c in people.toDF().columns if c != "id"],
    ]
    mapped = dfc.map(lambda frame, ctx: frame.repartition(1))
    assert mapped.keys() == ["ids", "others"]


def test_error_api_reports_no_errors(people: DynamicFrame) -> None:
    assert people.errorsCount() == 0
    assert people.stageErrorsCount() == 0
    assert people.errorsAsDynamicFrame().count() == 0
