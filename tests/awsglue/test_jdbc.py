"""PostgreSQL over JDBC: reading with jobBookmarkKeys picks up only rows added since commit."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job

from tests.awsglue.conftest import POSTGRES_JAR

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_JAR.exists(),
        reason=f"no PostgreSQL JDBC driver at {POSTGRES_JAR} "
        "(apt-get install libpostgresql-jdbc-java)",
    ),
]
DSN = "postgresql://postgres@127.0.0.1:5432/test"
JDBC_URL = "jdbc:postgresql://127.0.0.1:5432/test"


def sql(*statements: str) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(DSN)
        try:
            out: list[Any] = []
            for statement in statements:
                out = await conn.fetch(statement)
            return out
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def table() -> Iterator[str]:
    name = f"glue_bookmark_{secrets.token_hex(4)}"
    sql(f"CREATE TABLE {name} (id integer PRIMARY KEY, batch integer, seq integer, name text)")
    try:
        yield name
    finally:
        sql(f"DROP TABLE IF EXISTS {name}", f"DROP TABLE IF EXISTS {name}_copy")


def run(
    spark: Any,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    state_in: Path | None,
    state_out: Path,
    option: str = "job-bookmark-enable",
) -> list[tuple[Any, ...]]:
    monkeypatch.setattr(
        sys, "argv", ["job.py", "--job-bookmark-option", option, "--JOB_RUN_ID", state_out.stem]
    )
    if state_in is None:
        monkeypatch.delenv("AWSGLUE_BOOKMARK_IN", raising=False)
    else:
        monkeypatch.setenv("AWSGLUE_BOOKMARK_IN", str(state_in))
    monkeypatch.setenv("AWSGLUE_BOOKMARK_OUT", str(state_out))
    glue_context = GlueContext(spark.sparkContext)
    job = Job(glue_context)
    job.init("jdbc-job")
    frame = glue_context.create_dynamic_frame.from_options(
        connection_type="postgresql",
        connection_options={"url": JDBC_URL, "user": "postgres", "password": "", **options},
        transformation_ctx="db_source",
    )
    got = sorted(tuple(r) for r in frame.toDF().select("id", "name").collect())
    job.commit()
    return got


def test_bookmark_keys_read_only_new_rows(
    spark: Any, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(f"INSERT INTO {table} VALUES (1, 1, 1, 'a'), (2, 1, 2, 'b'), (3, 1, 3, 'c')")
    options = {"dbtable": table, "jobBookmarkKeys": ["id"], "jobBookmarkKeysSortOrder": "asc"}
    first = tmp_path / "run1.json"
    assert run(spark, monkeypatch, options, None, first) == [(1, "a"), (2, "b"), (3, "c")]
    entry = json.loads(first.read_text())["transformations"]["db_source"]
    assert entry == {"source": "jdbc", "keys": ["id"], "sort_order": "asc", "last": [3]}

    sql(f"INSERT INTO {table} VALUES (4, 2, 1, 'd'), (5, 2, 2, 'e')")
    second = tmp_path / "run2.json"
    assert run(spark, monkeypatch, options, first, second) == [(4, "d"), (5, "e")]
    assert json.loads(second.read_text())["transformations"]["db_source"]["last"] == [5]

    # Nothing new: no rows, and the bookmark stays where it was.
    third = tmp_path / "run3.json"
    assert run(spark, monkeypatch, options, second, third) == []
    assert json.loads(third.read_text())["transformations"]["db_source"]["last"] == [5]

    # Pause reads past the committed state without moving it.
    sql(f"INSERT INTO {table} VALUES (6, 2, 3, 'f')")
    paused = tmp_path / "paused.json"
    assert run(spark, monkeypatch, options, third, paused, "job-bookmark-pause") == [(6, "f")]
    assert not paused.exists()


def test_compound_bookmark_keys_compare_as_tuples(
    spark: Any, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(f"INSERT INTO {table} VALUES (1, 1, 1, 'a'), (2, 1, 2, 'b'), (3, 2, 1, 'c')")
    options = {"dbtable": table, "jobBookmarkKeys": ["batch", "seq"]}
    first = tmp_path / "run1.json"
    assert len(run(spark, monkeypatch, options, None, first)) == 3
    assert json.loads(first.read_text())["transformations"]["db_source"]["last"] == [2, 1]
    # (2, 2) and (3, 1) are past (2, 1); (1, 9) is not.
    sql(f"INSERT INTO {table} VALUES (4, 2, 2, 'd'), (5, 3, 1, 'e'), (6, 1, 9, 'late')")
    assert run(spark, monkeypatch, options, first, tmp_path / "run2.json") == [(4, "d"), (5, "e")]


def test_bookmarks_without_keys_are_refused(
    spark: Any, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="jobBookmarkKeys"):
        run(spark, monkeypatch, {"dbtable": table}, None, tmp_path / "run.json")


def test_write_appends_to_a_table(spark: Any, glue_context: Any, table: str) -> None:
    frame = DynamicFrame.fromDF(
        spark.createDataFrame([(1, "x"), (2, "y")], "id int, name string"), glue_context
    )
    options = {"url": JDBC_URL, "user": "postgres", "password": "", "dbtable": f"{table}_copy"}
    glue_context.write_dynamic_frame.from_options(
        frame=frame, connection_type="postgresql", connection_options=options
    )
    glue_context.write_dynamic_frame.from_options(
        frame=frame, connection_type="postgresql", connection_options=options
    )
    rows = sql(f"SELECT id, name FROM {table}_copy ORDER BY id, name")
    assert [tuple(r) for r in rows] == [(1, "x"), (1, "x"), (2, "y"), (2, "y")]
    back = glue_context.create_data_frame.from_options(
        connection_type="postgresql", connection_options=options
    )
    assert back.count() == 4
