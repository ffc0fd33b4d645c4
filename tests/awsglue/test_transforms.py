"""The transform classes' ``apply`` forms, and Relationalize's tables."""

from __future__ import annotations

from typing import Any

import pytest
from awsglue.dynamicframe import DynamicFrame
from awsglue.transforms import *  # noqa: F403 - what Glue scripts do
from awsglue.transforms import (
    ApplyMapping,
    DropFields,
    DropNullFields,
    Filter,
    Join,
    Map,
    Relationalize,
    RenameField,
    ResolveChoice,
    SelectFields,
    SelectFromCollection,
    SplitFields,
    Unbox,
)


@pytest.fixture
def orders(spark: Any, glue_context: Any) -> DynamicFrame:
    df = spark.createDataFrame(
        [
            (1, "c1", "10", '{"k": 1}', None),
            (2, "c2", "x", '{"k": 2}', None),
            (3, "c1", "30", None, None),
        ],
        "order_id long, customer_id string, amount string, meta string, unused string",
    )
    return DynamicFrame.fromDF(df, glue_context, "orders")


def ids(frame: DynamicFrame, key: str = "order_id") -> list[Any]:
    return sorted(r[key] for r in frame.toDF().collect())


def test_star_import_exports_the_transforms() -> None:
    names = {"ApplyMapping", "SelectFields", "DropFields", "RenameField", "Filter", "Map"}
    names |= {"ResolveChoice", "Join", "Relationalize", "DropNullFields", "SplitFields", "Unbox"}
    assert names <= set(globals())


def test_field_transforms(orders: DynamicFrame) -> None:
    mapped = ApplyMapping.apply(
        frame=orders,
        mappings=[("order_id", "long", "id", "string"), ("amount", "string", "amount", "long")],
        transformation_ctx="am",
    )
    assert sorted((r["id"], r["amount"]) for r in mapped.toDF().collect()) == [
        ("1", 10),
        ("2", None),
        ("3", 30),
    ]
    assert SelectFields.apply(frame=orders, paths=["order_id"]).toDF().columns == ["order_id"]
    assert "meta" not in DropFields.apply(frame=orders, paths=["meta"]).toDF().columns
    renamed = RenameField.apply(frame=orders, old_name="customer_id", new_name="customer")
    assert "customer" in renamed.toDF().columns
    assert "unused" not in DropNullFields.apply(frame=orders).toDF().columns


def test_row_transforms(orders: DynamicFrame) -> None:
    assert ids(Filter.apply(frame=orders, f=lambda r: r["customer_id"] == "c1")) == [1, 3]
    doubled = Map.apply(
        frame=orders, f=lambda r: {"order_id": r["order_id"], "twice": r["order_id"] * 2}
    )
    assert sorted((r["order_id"], r["twice"]) for r in doubled.toDF().collect()) == [
        (1, 2),
        (2, 4),
        (3, 6),
    ]


def test_resolve_choice_and_unbox(orders: DynamicFrame) -> None:
    resolved = ResolveChoice.apply(frame=orders, specs=[("amount", "cast:long")])
    assert sorted(r["amount"] for r in resolved.toDF().collect() if r["amount"]) == [10, 30]
    cols = ResolveChoice.apply(orders, choice="make_cols")
    assert {"amount_long", "amount_string"} <= set(cols.toDF().columns)
    unboxed = Unbox.apply(frame=orders, path="meta", format="json")
    assert sorted(r["meta"]["k"] for r in unboxed.toDF().collect() if r["meta"]) == [1, 2]


def test_join_and_split(spark: Any, glue_context: Any, orders: DynamicFrame) -> None:
    customers = DynamicFrame.fromDF(
        spark.createDataFrame([("c1", "Ada"), ("c2", "Alan")], "cid string, cname string"),
        glue_context,
    )
    joined = Join.apply(orders, customers, "customer_id", "cid")
    assert sorted((r["order_id"], r["cname"]) for r in joined.toDF().collect()) == [
        (1, "Ada"),
        (2, "Alan"),
        (3, "Ada"),
    ]
    named = Join.apply(frame1=orders, frame2=customers, keys1=["customer_id"], keys2=["cid"])
    assert named.count() == 3
    split = SplitFields.apply(frame=orders, paths=["order_id", "amount"])
    assert split.keys() == ["orders1", "orders2"]
    assert SelectFromCollection.apply(dfc=split, key="orders1").toDF().columns == [
        "order_id",
        "amount",
    ]


LEGISLATORS_SCHEMA = (
    "id string, name struct<given:string,family:string>, "
    "contact_details array<struct<type:string,value:string>>, tags array<string>, "
    "terms array<struct<start:string,committees:array<string>>>"
)
LEGISLATORS = [
    (
        "p1",
        ("Mike", "Ross"),
        [("fax", "202-1"), ("phone", "202-2")],
        ["a", "b"],
        [("2001", ["x", "y"])],
    ),
    ("p2", ("Shelley", "Capito"), [("twitter", "SenCapito")], [], [("2015", []), ("2021", ["z"])]),
    ("p3", ("No", "Arrays"), None, None, None),
]


def test_relationalize_names_tables_and_columns_as_aws(
    spark: Any, glue_context: Any, tmp_path: Any
) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame(LEGISLATORS, LEGISLATORS_SCHEMA), glue_context
    )
    dfc = Relationalize.apply(frame=frame, staging_path=str(tmp_path / "staging"), name="hist_root")
    assert dfc.keys() == [
        "hist_root",
        "hist_root_contact_details",
        "hist_root_tags",
        "hist_root_terms",
        "hist_root_terms.val.committees",
    ]
    root = dfc["hist_root"].toDF()
    assert root.columns == ["id", "name.given", "name.family", "contact_details", "tags", "terms"]
    contacts = dfc["hist_root_contact_details"].toDF()
    assert contacts.columns == [
        "id",
        "index",
        "contact_details.val.type",
        "contact_details.val.value",
    ]
    tags = dfc["hist_root_tags"].toDF()
    assert tags.columns == ["id", "index", "tags.val"]

    # The root's array column holds the id that joins to the pivoted table.
    joined = root.join(contacts, root["contact_details"] == contacts["id"])
    got = sorted(
        (
            r["name.family"],
            r["index"],
            r["contact_details.val.type"],
            r["contact_details.val.value"],
        )
        for r in joined.select(
            root["`name.family`"],
            "index",
            "`contact_details.val.type`",
            "`contact_details.val.value`",
        ).collect()
    )
    assert got == [
        ("Capito", 0, "twitter", "SenCapito"),
        ("Ross", 0, "fax", "202-1"),
        ("Ross", 1, "phone", "202-2"),
    ]
    by_name = {r["name.family"]: r for r in root.collect()}
    assert by_name["Arrays"]["contact_details"] is None
    assert by_name["Capito"]["tags"] is not None  # an empty array still gets an id
    assert tags.count() == 2

    # A nested array: terms[].committees becomes its own table, keyed from the terms table.
    terms = dfc["hist_root_terms"].toDF()
    committees = dfc["hist_root_terms.val.committees"].toDF()
    assert terms.columns == ["id", "index", "terms.val.start", "terms.val.committees"]
    assert committees.columns == ["id", "index", "terms.val.committees.val"]
    nested = terms.join(committees, terms["`terms.val.committees`"] == committees["id"]).select(
        terms["`terms.val.start`"], committees["`terms.val.committees.val`"]
    )
    assert sorted(tuple(r) for r in nested.collect()) == [
        ("2001", "x"),
        ("2001", "y"),
        ("2021", "z"),
    ]


def test_relationalize_without_arrays_or_staging(spark: Any, glue_context: Any) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame([("a", ("b", 1))], "x string, s struct<y:string,z:int>"), glue_context
    )
    dfc = frame.relationalize("root", None)
    assert dfc.keys() == ["root"]
    assert [tuple(r) for r in dfc["root"].toDF().collect()] == [("a", "b", 1)]
    assert dfc["root"].toDF().columns == ["x", "s.y", "s.z"]
