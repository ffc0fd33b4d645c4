"""CSV columns typed as Glue types them, with the types checked by the write's own pass.

A frame read from CSV is typed from a sample; written to files, it is written once with those
types while the write checks them (awsglue._csvtypes). These tests make the sample small so
that later records can contradict it, and check that the result is always the exact typing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from awsglue import _csvtypes, _ops
from awsglue._choice import DOUBLE_RE, LONG_RE
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias

SAMPLE = 10


@pytest.fixture(autouse=True)
def small_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10-record sample, so that a 30-record file has records the sample does not see."""
    monkeypatch.setattr(_csvtypes, "SAMPLE_ROWS", SAMPLE)


def _csv(root: Path, values: list[str], name: str = "in") -> str:
    folder = root / "bucket" / name
    folder.mkdir(parents=True)
    lines = ["id,value", *[f"{i},{v}" for i, v in enumerate(values)]]
    (folder / "part.csv").write_text("\n".join(lines) + "\n")
    return f"s3://bucket/{name}/"


def _read(glue_context: Any, path: str) -> Any:
    return glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        format="csv",
        format_options={"withHeader": True},
        connection_options={"paths": [path]},
    )


def _write_and_read_back(glue_context: Any, frame: Any, root: Path) -> Any:
    glue_context.write_dynamic_frame.from_options(
        frame=frame,
        connection_type="s3",
        format="parquet",
        connection_options={"path": "s3://bucket/out/"},
    )
    out = root / "bucket" / "out"
    assert not [p for p in os.listdir(out) if p.startswith(_csvtypes.STAGING_PREFIX)]
    return glue_context.spark_session.read.parquet(str(out))


def _tasks_per_job(spark: Any, group: str, action: Any) -> list[int]:
    """How many tasks each job ``action`` ran had (its stages' tasks summed)."""
    spark.sparkContext.setJobGroup(group, group)
    try:
        action()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    tracker = spark.sparkContext.statusTracker()
    tasks = []
    for job in sorted(tracker.getJobIdsForGroup(group)):
        info = tracker.getJobInfo(job)
        stages = [tracker.getStageInfo(stage) for stage in info.stageIds] if info else []
        tasks.append(sum(stage.numTasks for stage in stages if stage))
    return tasks


def test_fast_checks_agree_with_the_regular_expressions(spark: Any) -> None:
    values = [
        "0", "7", "-7", "+7", "007", "-0", " 5", "5 ", "\t5\n", "\x015", "5\x01", "5\x01 ",
        "123456789012345678", "1234567890123456789", "-123456789012345678", "1.5", "-.5",
        ".5", "5.", ".", "-.", "+.", "-", "+", "", "1e5", "1.2x3", "1.2.3", "--5", "5-", "0x10",
        "1d", "NaN", "\u0663", "1.5\u2028", "12\u2028", "abc", "9223372036854775807",
        "-9223372036854775808", "99999999999999999999.5",
    ]  # fmt: skip
    df = spark.createDataFrame([(v,) for v in values], "v string")
    v = F.col("v")
    rows = df.select(
        "v",
        v.rlike(LONG_RE).alias("long_re"),
        v.rlike(DOUBLE_RE).alias("double_re"),
        _csvtypes._is_long(v, True).alias("is_long"),
        _csvtypes._is_double(v, True).alias("is_double"),
        (_csvtypes._canonical_excess(v) == 0).alias("canonical"),
    ).collect()
    for row in rows:
        assert row.is_long == row.long_re, row.v
        assert row.is_double == row.double_re, row.v
        # The cheap check of a long column may refuse a long value, never accept another.
        assert not row.canonical or row.long_re, row.v
    assert [r.v for r in rows if r.canonical] == [
        "0",
        "7",
        "-7",
        "123456789012345678",
        "-123456789012345678",
    ]


@pytest.mark.parametrize(
    ("later", "kind", "written"),
    [
        # The sample sees integers only; what the unseen records hold decides the type.
        (["40", "41"], "bigint", "40"),
        (["0040", "41"], "bigint", "40"),  # long, though not canonical: exact check, no rewrite
        (["40.5", "41"], "double", "40.5"),
        (["n/a", "007"], "string", "007"),
    ],
)
def test_a_guess_the_later_records_refute_is_corrected(
    spark: Any, glue_context: Any, s3_root: Path, later: list[str], kind: str, written: str
) -> None:
    values = [str(i) for i in range(3 * SAMPLE)] + later
    frame = _read(glue_context, _csv(s3_root, values))
    mapped = frame.apply_mapping(
        [("id", "string", "id", "long"), ("value", "string", "v", "string")]
    )
    back = _write_and_read_back(glue_context, mapped, s3_root)
    assert back.count() == len(values), "written once, whatever the guess"
    assert written in {r.v for r in back.collect()}
    # The frame now knows its exact types, without another look at the data.
    assert dict(frame.toDF().dtypes)["value"] == kind
    assert dict(mapped.toDF().dtypes) == {"id": "bigint", "v": "string"}


def test_a_column_null_in_the_sample_is_typed_by_all_records(
    glue_context: Any, s3_root: Path
) -> None:
    frame = _read(glue_context, _csv(s3_root, [""] * (3 * SAMPLE) + ["5", "6"]))
    back = _write_and_read_back(glue_context, frame, s3_root)
    assert dict(back.dtypes)["value"] == "bigint"
    assert sorted(r.value for r in back.collect() if r.value is not None) == [5, 6]


def test_a_confirmed_guess_is_written_in_one_pass(
    spark: Any, glue_context: Any, s3_root: Path
) -> None:
    values = [f"{i}.25" for i in range(3 * SAMPLE)]
    path = _csv(s3_root, values)
    # A second file: two partitions, so that a pass over all the data runs two tasks.
    (s3_root / "bucket" / "in" / "part2.csv").write_text("id,value\n" + "99,1.5\n" * SAMPLE)

    def read_and_write() -> None:
        frame = _read(glue_context, path).rename_field("value", "amount")
        glue_context.write_dynamic_frame.from_options(
            frame=frame,
            connection_type="s3",
            format="parquet",
            connection_options={"path": "s3://bucket/out/", "partitionKeys": ["amount"]},
        )

    tasks = _tasks_per_job(spark, "csv-types-one-pass", read_and_write)
    # The header reads the first partition only, the sample is read on the driver
    # (_csvlocal.sample_plain_csv); the write is the one pass.
    assert sorted(tasks) == [1, 2], tasks
    out = s3_root / "bucket" / "out"
    assert not [p for p in os.listdir(out) if p.startswith(_csvtypes.STAGING_PREFIX)]
    back = spark.read.parquet(str(out))
    assert dict(back.dtypes) == {"id": "bigint", "amount": "double"}
    assert back.count() == 4 * SAMPLE


def test_a_sample_not_plain_is_taken_by_spark(spark: Any, glue_context: Any, s3_root: Path) -> None:
    # Quoted fields: the driver does not parse them, Spark samples (one more small job).
    path = _csv(s3_root, [f'"{i}.25"' for i in range(3 * SAMPLE)])

    def read_and_write() -> None:
        glue_context.write_dynamic_frame.from_options(
            frame=_read(glue_context, path),
            connection_type="s3",
            format="parquet",
            connection_options={"path": "s3://bucket/out/"},
        )

    assert sorted(_tasks_per_job(spark, "csv-types-spark-sample", read_and_write)) == [1, 1, 1]
    back = spark.read.parquet(str(s3_root / "bucket" / "out"))
    assert dict(back.dtypes) == {"id": "bigint", "value": "double"}


def test_a_frame_used_before_it_is_written_gets_the_exact_types(
    glue_context: Any, s3_root: Path
) -> None:
    frame = _read(glue_context, _csv(s3_root, [str(i) for i in range(3 * SAMPLE)] + ["x"]))
    assert frame.count() == 3 * SAMPLE + 1
    assert dict(frame.toDF().dtypes) == {"id": "bigint", "value": "string"}
    schema = frame.select_fields(["value"]).schema()
    assert [f.dataType.simpleString() for f in schema.fields] == ["string"]


def test_columns_a_mapping_does_not_depend_on_are_not_checked(
    spark: Any, glue_context: Any, s3_root: Path
) -> None:
    # "value" looks like doubles in the sample but is a string (a later "n/a"); "id" is not
    # mapped. Cast to double, "value" is the same either way, so the write checks nothing.
    values = [f"{i}.5" for i in range(3 * SAMPLE)] + ["n/a"]
    path = _csv(s3_root, values)
    frame = _read(glue_context, path)
    mapped = frame.apply_mapping([("value", "string", "v", "double")])

    def write() -> None:
        glue_context.write_dynamic_frame.from_options(
            frame=mapped,
            connection_type="s3",
            format="parquet",
            connection_options={"path": "s3://bucket/out/"},
        )

    # The write alone (no rewrite), straight to the target (no staging folder).
    assert _tasks_per_job(spark, "csv-types-unchecked", write) == [1]
    assert not [p for p in os.listdir(s3_root / "bucket" / "out") if p.startswith("_glue")]
    back = spark.read.parquet(str(s3_root / "bucket" / "out"))
    assert dict(back.dtypes) == {"v": "double"}
    assert back.count() == len(values) and back.filter("v is null").count() == 1
    # The source's own types are exact when asked for.
    assert dict(frame.toDF().dtypes) == {"id": "bigint", "value": "string"}


@pytest.mark.parametrize(
    ("mappings", "ignored"),
    [
        ([("amount", "string", "amount", "double")], {"amount", "name", "id"}),
        (
            [("id", "string", "id", "long"), ("AMOUNT", "string", "a", "double")],
            {"name", "amount"},
        ),
        (
            [("amount", "string", "a", "double"), ("amount", "string", "b", "string")],
            {"id", "name"},
        ),
        ([("amount.x", "string", "a", "double"), ("name", "string", "n", "double")], {"id"}),
    ],
)
def test_the_types_a_mapping_ignores(
    mappings: list[tuple[str, str, str, str]], ignored: set[str]
) -> None:
    kinds = {"id": "long", "name": "string", "amount": "double"}
    assert _ops.types_mapping_ignores(mappings, kinds) == ignored
