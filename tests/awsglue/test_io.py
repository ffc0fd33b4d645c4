"""Reading and writing s3:// (mapped) and local paths: formats, Glue's options, appends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from awsglue.dynamicframe import DynamicFrame


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read(glue_context: Any, paths: list[str], fmt: str, **format_options: Any) -> DynamicFrame:
    return glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": paths},
        format=fmt,
        format_options=format_options,
    )


def sorted_rows(frame: DynamicFrame | Any) -> list[tuple[Any, ...]]:
    df = frame.toDF() if isinstance(frame, DynamicFrame) else frame
    return sorted(tuple(r) for r in df.collect())


def test_csv_with_header_from_s3_types_like_glue(glue_context: Any, s3_root: Path) -> None:
    write(s3_root / "bucket/in/a.csv", 'id,price,name,when\n1,2.5,ada,2024-01-01\n2,3,"b, c",x\n')
    frame = read(glue_context, ["s3://bucket/in/"], "csv", withHeader=True)
    # Longs and doubles are typed; dates stay strings, as Glue's CSV reader leaves them.
    assert (
        frame.toDF().schema.simpleString()
        == "struct<id:bigint,price:double,name:string,when:string>"
    )
    assert sorted_rows(frame) == [(1, 2.5, "ada", "2024-01-01"), (2, 3.0, "b, c", "x")]


def test_csv_without_header_names_columns_col0(glue_context: Any, s3_root: Path) -> None:
    write(s3_root / "b/x.csv", "1;'a;b'\n2;'it''s'\n")
    frame = read(glue_context, ["s3://b/x.csv"], "csv", separator=";", quoteChar="'")
    assert frame.toDF().columns == ["col0", "col1"]
    assert sorted_rows(frame) == [(1, "a;b"), (2, "it's")]


def test_csv_skip_first_escaper_and_multiline(glue_context: Any, s3_root: Path) -> None:
    write(s3_root / "b/skip.csv", "junk line\n1,x\n")
    assert sorted_rows(read(glue_context, ["s3://b/skip.csv"], "csv", skipFirst=True)) == [(1, "x")]
    write(s3_root / "b/titled/1.csv", "Report of 2024\nid,v\n1,x\n2,y\n")
    write(s3_root / "b/titled/2.csv", "Report of 2025\nid,v\n3,z\n")
    titled = read(glue_context, ["s3://b/titled/"], "csv", skipFirst=True, withHeader=True)
    assert titled.toDF().columns == ["id", "v"]
    assert sorted_rows(titled) == [(1, "x"), (2, "y"), (3, "z")]
    write(s3_root / "b/esc.csv", 'id,v\n1,"say \\"hi\\""\n')
    escaped = read(glue_context, ["s3://b/esc.csv"], "csv", withHeader=True, escaper="\\")
    assert sorted_rows(escaped) == [(1, 'say "hi"')]
    write(s3_root / "b/multi.csv", 'id,v\n1,"two\nlines"\n2,one\n')
    multi = read(glue_context, ["s3://b/multi.csv"], "csv", withHeader=True, multiline=True)
    assert sorted_rows(multi) == [(1, "two\nlines"), (2, "one")]


def test_json_lines_multiline_and_json_path(glue_context: Any, s3_root: Path) -> None:
    write(s3_root / "b/lines/1.json", '{"id": 1, "v": {"x": "a"}}\n{"id": 2, "v": {"x": "b"}}\n')
    lines = read(glue_context, ["s3://b/lines/"], "json")
    assert sorted((r["id"], r["v"]["x"]) for r in lines.toDF().collect()) == [(1, "a"), (2, "b")]
    doc = {"meta": {"n": 2}, "records": [{"id": 3}, {"id": 4}]}
    write(s3_root / "b/doc/d.json", json.dumps(doc, indent=2))
    records = read(glue_context, ["s3://b/doc/"], "json", multiline=True, jsonPath="$.records[*]")
    assert sorted_rows(records) == [(3,), (4,)]


@pytest.mark.parametrize("fmt", ["parquet", "orc", "json", "csv"])
def test_write_then_read_back_appends(
    spark: Any, glue_context: Any, s3_root: Path, fmt: str
) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "a"), (2, "b")], "id long, name string"), glue_context
    )
    sink = {"path": "s3://out/table/"}
    options = {"withHeader": True} if fmt == "csv" else {}
    glue_context.write_dynamic_frame.from_options(
        frame=frame, connection_type="s3", connection_options=sink, format=fmt
    )
    # A second write adds files: Glue's S3 sink never replaces a folder.
    glue_context.write_dynamic_frame_from_options(frame, "s3", sink, fmt)
    back = read(glue_context, ["s3://out/table/"], fmt, **options)
    assert sorted_rows(back) == [(1, "a"), (1, "a"), (2, "b"), (2, "b")]
    assert (s3_root / "out/table").is_dir()


def test_csv_write_header_option(spark: Any, glue_context: Any, s3_root: Path) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "a")], "id long, name string"), glue_context
    )
    frame.coalesce(1).write("s3", {"path": "s3://out/h/"}, "csv")
    frame.coalesce(1).write(
        "s3", {"path": "s3://out/n/"}, "csv", {"writeHeader": False, "separator": "|"}
    )
    with_header = [p.read_text() for p in (s3_root / "out/h").glob("*.csv")]
    without = [p.read_text() for p in (s3_root / "out/n").glob("*.csv")]
    assert with_header == ["id,name\n1,a\n"]
    assert without == ["1|a\n"]


def test_partition_keys_and_reading_partitions_back(
    spark: Any, glue_context: Any, s3_root: Path
) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "2024"), (2, "2025"), (3, "2025")], "id long, year string"),
        glue_context,
    )
    glue_context.write_dynamic_frame.from_options(
        frame=frame,
        connection_type="s3",
        connection_options={"path": "s3://out/parts/", "partitionKeys": ["year"]},
        format="parquet",
    )
    assert sorted(p.name for p in (s3_root / "out/parts").iterdir() if p.is_dir()) == [
        "year=2024",
        "year=2025",
    ]
    back = read(glue_context, ["s3://out/parts/"], "parquet")
    assert sorted_rows(back.select_fields(["id", "year"])) == [(1, 2024), (2, 2025), (3, 2025)]


def test_recurse_and_exclusions(glue_context: Any, s3_root: Path) -> None:
    write(s3_root / "b/r/top.json", '{"id": 1}\n')
    write(s3_root / "b/r/sub/deep.json", '{"id": 2}\n')
    write(s3_root / "b/r/sub/skip.txt.json", '{"id": 3}\n')
    flat = read(glue_context, ["s3://b/r/"], "json")
    assert sorted_rows(flat) == [(1,)]
    deep = glue_context.create_dynamic_frame.from_options(
        "s3",
        {"paths": ["s3://b/r/"], "recurse": True, "exclusions": '["**skip*"]'},
        "json",
    )
    assert sorted_rows(deep) == [(1,), (2,)]


def test_data_frame_reader_and_local_paths(glue_context: Any, tmp_path: Path) -> None:
    write(tmp_path / "local/a.json", '{"id": 5}\n')
    df = glue_context.create_data_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [f"file://{tmp_path}/local/"]},
        format="json",
    )
    assert sorted_rows(df) == [(5,)]
    frame = glue_context.create_dynamic_frame_from_options(
        "s3", {"paths": [str(tmp_path / "local")]}, "json"
    )
    assert sorted_rows(frame) == [(5,)]


def test_catalog_calls_say_what_to_use_instead(glue_context: Any) -> None:
    with pytest.raises(NotImplementedError, match=r"no AWS Glue Data Catalog.*from_options"):
        glue_context.create_dynamic_frame.from_catalog(database="db", table_name="t")
    with pytest.raises(NotImplementedError, match=r"write_dynamic_frame\.from_options"):
        glue_context.write_dynamic_frame.from_catalog(frame=None, database="db", table_name="t")
    with pytest.raises(NotImplementedError, match="from_options"):
        glue_context.create_dynamic_frame_from_catalog("db", "t")
    with pytest.raises(NotImplementedError, match="from_options"):
        glue_context.create_data_frame.from_catalog(database="db", table_name="t")


def test_unsupported_connection_and_format(glue_context: Any, s3_root: Path) -> None:
    with pytest.raises(ValueError, match="connection_type 'dynamodb' is not supported"):
        glue_context.create_dynamic_frame.from_options("dynamodb", {})
    with pytest.raises(ValueError, match="format 'avro'"):
        read(glue_context, ["s3://b/x"], "avro")
    with pytest.raises(ValueError, match="needs 'paths'"):
        glue_context.create_dynamic_frame.from_options("s3", {}, "json")


def test_spark_session_and_logger(
    spark: Any, glue_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert glue_context.spark_session is spark
    assert glue_context.sparkSession is spark
    logger = glue_context.get_logger()
    logger.info("hello info")
    logger.warning("hello warn")
    logger.error("hello error")
    err = capsys.readouterr().err
    assert "INFO awsglue: hello info" in err
    assert "WARNING awsglue: hello warn" in err
    assert "ERROR awsglue: hello error" in err


def test_glob_paths_are_listed_with_their_uris(s3_root: Path) -> None:
    from awsglue._s3 import list_files

    write(s3_root / "b/in/day=1/x.csv", "a\n")
    write(s3_root / "b/in/day=2/y.csv", "b\n")
    write(s3_root / "b/in/day=2/_SUCCESS", "")
    listed = list_files(["s3://b/in/day=*/*.csv"], recurse=False, exclusions=[])
    assert sorted(f.uri for f in listed) == ["s3://b/in/day=1/x.csv", "s3://b/in/day=2/y.csv"]
    whole = list_files(["s3://b/in/"], recurse=False, exclusions=["*y.csv"])
    assert [f.uri for f in whole] == ["s3://b/in/day=1/x.csv"]
    assert whole[0].size == 2
