"""Small plain CSV inputs typed on the driver: the same names, types and rows as Spark's way.

A source whose files are listed (bookmarks, exclusions) and small and plain is typed by
``awsglue._csvlocal`` without Spark's header job and the type sample. These tests read the same
files both ways (an ``exclusions`` that excludes nothing makes the source listed) and compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from awsglue import _csvtypes
from awsglue._csvlocal import read_plain_csv, sample_plain_csv
from awsglue._s3 import PARALLEL_LISTING

PLAIN = {
    "header, every kind": {
        "a.csv": "id,amount,name,code,empty\n1,2.5,x,007,\n2,-3,y, 5,\n+3,.5,z,1e5,\n",
    },
    "header, several files, one empty": {
        "a.csv": "id,value\n1,10\n2,\n",
        "b.csv": "id,value\n3,4.5\n",
        "c.csv": "",
        "d.csv": "id,value\n",
    },
    "no header": {"a.csv": "1,x,2.0\n2,y,3\n", "b.csv": "3,z,-4"},
    "a long beyond 18 digits": {"a.csv": "n\n1234567890123456789\n"},
}
NOT_PLAIN = {
    "quotes": {"a.csv": 'id,name\n1,"a, b"\n'},
    "CRLF": {"a.csv": "id,name\r\n1,a\r\n"},
    "headers differ": {"a.csv": "id,name\n1,a\n", "b.csv": "name,id\nb,2\nc,3\n"},
    "not ASCII": {"a.csv": "id,name\n1,\u00e9\n"},
    "a blank line": {"a.csv": "id,name\n\n1,a\n"},
    "duplicate names": {"a.csv": "id,ID\n1,2\n"},
    "an empty name": {"a.csv": "id,\n1,2\n"},
    "ragged": {"a.csv": "id,name\n1\n"},
    "a key=value folder": {"k=1/a.csv": "id\n1\n"},
}
WITH_HEADER = {"no header": False}


def _files(root: Path, name: str, files: dict[str, str]) -> str:
    folder = root / "bucket" / name.replace(" ", "-").replace(",", "")
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return f"s3://bucket/{folder.name}/"


def _read(glue_context: Any, path: str, header: bool, listed: bool) -> Any:
    options: dict[str, Any] = {"paths": [path]}
    if listed:
        options["exclusions"] = '["s3://nothing/**"]'
    return glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        format="csv",
        format_options={"withHeader": header},
        connection_options=options,
    )


def _jobs(spark: Any, group: str, action: Any) -> tuple[int, Any]:
    """How many Spark jobs ``action`` ran, and what it returned."""
    spark.sparkContext.setJobGroup(group, group)
    try:
        result = action()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))
    return jobs, result


def _rows(frame: Any) -> tuple[Any, list[Any]]:
    df = frame.toDF()
    return df.schema, sorted(df.collect(), key=str)


@pytest.mark.parametrize("case", [*PLAIN, *NOT_PLAIN])
def test_a_listed_source_reads_as_spark_reads_it(
    glue_context: Any, s3_root: Path, case: str
) -> None:
    files = PLAIN.get(case) or NOT_PLAIN[case]
    path = _files(s3_root, case, files)
    header = WITH_HEADER.get(case, True)
    spark = glue_context.spark_session
    jobs, listed = _jobs(spark, f"listed-{case}", lambda: _read(glue_context, path, header, True))
    # Plain inputs cost no Spark job to read; others take Spark's way (header, sample).
    assert (jobs == 0) == (case in PLAIN)
    assert _rows(listed) == _rows(_read(glue_context, path, header, False))


@pytest.mark.parametrize("setting", [None, "8"])
def test_many_listed_files_cost_no_listing_job(
    glue_context: Any, s3_root: Path, setting: str | None
) -> None:
    # 40 files: past Spark's threshold (32, or the session's 8), where Spark would list them
    # again in a job of its own; the session's setting is as it was after the read.
    files = {f"part-{i:03d}.csv": f"id,value\n{i},{i * 2}\n" for i in range(40)}
    path = _files(s3_root, f"many files {setting}", files)
    spark = glue_context.spark_session
    if setting is not None:
        spark.conf.set(PARALLEL_LISTING, setting)
    try:
        jobs, frame = _jobs(spark, f"many-{setting}", lambda: _read(glue_context, path, True, True))
        assert jobs == 0
        assert spark.conf.get(PARALLEL_LISTING, None) == setting
    finally:
        spark.conf.unset(PARALLEL_LISTING)
    assert sorted(frame.toDF().collect()) == [(i, i * 2) for i in range(40)]


def test_the_types_are_those_of_every_value(glue_context: Any, s3_root: Path) -> None:
    path = _files(s3_root, "kinds", PLAIN["header, every kind"])
    frame = _read(glue_context, path, True, True)
    kinds = {f.name: f.dataType.simpleString() for f in frame.toDF().schema.fields}
    assert kinds == {
        "id": "bigint",
        "amount": "double",
        "name": "string",
        "code": "double",
        "empty": "string",
    }


def test_as_many_records_as_the_sample_go_to_spark(tmp_path: Path) -> None:
    rows = _csvtypes.SAMPLE_ROWS
    path = tmp_path / "a.csv"
    path.write_text("id\n" + "1\n" * rows)
    found = read_plain_csv([str(path)], [path.stat().st_size], ",", '"', '"', True, rows + 1)
    assert found is not None and found.kinds == {"id": "long"}
    assert read_plain_csv([str(path)], [path.stat().st_size], ",", '"', '"', True, rows) is None


def test_large_inputs_go_to_spark(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id\n1\n")
    assert read_plain_csv([str(path)], [2 << 20], ",", '"', '"', True, 1000) is None


def test_a_large_input_is_sampled_from_its_first_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    # More than the driver reads: the line cut at the end of the read is not classified.
    lines = [f"{i},{i}.5,x" for i in range(200_000)]
    path.write_text("id,amount,name\n" + "\n".join(lines) + "\n")
    sample = sample_plain_csv(str(path), ",", '"', '"', True, ["id", "amount", "name"], 1000, True)
    assert sample is not None and not sample.complete
    assert sample.found == [{"long"}, {"double"}, {"string"}]


def test_a_small_only_file_is_a_complete_sample(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("1,,x\n2,,y")
    sample = sample_plain_csv(str(path), ",", '"', '"', False, ["_c0", "_c1", "_c2"], 1000, True)
    assert sample is not None and sample.complete
    assert sample.found == [{"long"}, set(), {"string"}]
    one_of_two = sample_plain_csv(str(path), ",", '"', '"', False, ["a", "b", "c"], 1000, False)
    assert one_of_two is not None and not one_of_two.complete


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("id,name\n1,a\n", ["name", "id"]),  # not the header Spark took
        ('id,name\n1,"a"\n', ["id", "name"]),  # quotes
        ("id,name\n1\n", ["id", "name"]),  # ragged
        ("id,name\n", ["id", "name"]),  # no record to guess from
    ],
)
def test_a_sample_spark_must_take(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "a.csv"
    path.write_text(text)
    assert sample_plain_csv(str(path), ",", '"', '"', True, names, 1000, True) is None
