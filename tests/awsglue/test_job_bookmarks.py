"""Job.init/commit with file bookmarks, in this process: enable, pause, disable, changes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from awsglue.context import GlueContext
from awsglue.job import Job

SOURCE = {"paths": ["s3://bucket/in/"]}


def add_csv(s3_root: Path, name: str, rows: list[tuple[int, str]]) -> Path:
    path = s3_root / "bucket/in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))
    return path


def run(
    spark: Any,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    state_in: Path | None,
    state_out: Path | None,
    ctx: str = "source",
) -> list[tuple[Any, ...]]:
    """One job run as a script does it; returns the rows the source produced."""
    monkeypatch.setattr(
        sys,
        "argv",
        ["job.py", "--JOB_NAME", "j", "--JOB_RUN_ID", "jr", "--job-bookmark-option", option],
    )
    for name, value in (("AWSGLUE_BOOKMARK_IN", state_in), ("AWSGLUE_BOOKMARK_OUT", state_out)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))
    glue_context = GlueContext(spark.sparkContext)
    job = Job(glue_context)
    job.init("j", {"JOB_NAME": "j"})
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", SOURCE, "csv", {"withHeader": True}, transformation_ctx=ctx
    )
    got = sorted(tuple(r) for r in frame.toDF().collect())
    job.commit()
    return got


def test_enable_reads_only_new_files_after_a_commit(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a"), (2, "b")])
    first = tmp_path / "run1.json"
    assert run(spark, monkeypatch, "job-bookmark-enable", None, first) == [(1, "a"), (2, "b")]
    state = json.loads(first.read_text())
    assert state["version"] == 1 and state["job_name"] == "j" and state["run_id"] == "jr"
    entry = state["transformations"]["source"]
    assert entry["source"] == "files"
    stat = (s3_root / "bucket/in/a.csv").stat()
    assert entry["files"] == {
        "s3://bucket/in/a.csv": {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
    }

    add_csv(s3_root, "b.csv", [(3, "c")])
    second = tmp_path / "run2.json"
    assert run(spark, monkeypatch, "job-bookmark-enable", first, second) == [(3, "c")]
    assert set(json.loads(second.read_text())["transformations"]["source"]["files"]) == {
        "s3://bucket/in/a.csv",
        "s3://bucket/in/b.csv",
    }

    # Nothing new: an empty frame that still has the columns.
    third = tmp_path / "run3.json"
    assert run(spark, monkeypatch, "job-bookmark-enable", second, third) == []


def test_a_changed_file_is_read_again(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = add_csv(s3_root, "a.csv", [(1, "a")])
    first = tmp_path / "run1.json"
    run(spark, monkeypatch, "job-bookmark-enable", None, first)
    add_csv(s3_root, "a.csv", [(1, "a"), (2, "b")])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert run(spark, monkeypatch, "job-bookmark-enable", first, tmp_path / "run2.json") == [
        (1, "a"),
        (2, "b"),
    ]


def test_pause_reads_from_the_state_and_writes_nothing(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a")])
    first = tmp_path / "run1.json"
    run(spark, monkeypatch, "job-bookmark-enable", None, first)
    add_csv(s3_root, "b.csv", [(2, "b")])
    paused = tmp_path / "paused.json"
    assert run(spark, monkeypatch, "job-bookmark-pause", first, paused) == [(2, "b")]
    assert not paused.exists()


def test_disable_reads_everything_and_writes_nothing(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a")])
    first = tmp_path / "run1.json"
    run(spark, monkeypatch, "job-bookmark-enable", None, first)
    disabled = tmp_path / "disabled.json"
    assert run(spark, monkeypatch, "job-bookmark-disable", first, disabled) == [(1, "a")]
    assert not disabled.exists()


def test_sources_without_transformation_ctx_are_not_bookmarked(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a")])
    first = tmp_path / "run1.json"
    run(spark, monkeypatch, "job-bookmark-enable", None, first, ctx="")
    assert json.loads(first.read_text())["transformations"] == {}
    assert run(
        spark, monkeypatch, "job-bookmark-enable", first, tmp_path / "run2.json", ctx=""
    ) == [(1, "a")]


def test_no_out_variable_means_commit_writes_nothing(
    spark: Any,
    s3_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a")])
    assert run(spark, monkeypatch, "job-bookmark-enable", None, None) == [(1, "a")]
    assert "AWSGLUE_BOOKMARK_OUT is not set" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s3"]


def test_bookmark_option_comes_from_args_or_argv(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWSGLUE_BOOKMARK_IN", raising=False)
    monkeypatch.setattr(
        sys,
        "argv",
        ["job.py", "--job-bookmark-option", "job-bookmark-pause", "--JOB_RUN_ID", "jr_9"],
    )
    glue_context = GlueContext(spark.sparkContext)
    job = Job(glue_context)
    assert not job.isInitialized()
    with pytest.raises(RuntimeError, match=r"before job\.init"):
        job.commit()
    job.init("j")
    assert job.isInitialized()
    assert glue_context._bookmarks is not None
    assert (glue_context._bookmarks.option, glue_context._bookmarks.run_id) == (
        "job-bookmark-pause",
        "jr_9",
    )
    # What getResolvedOptions returned wins over the command line.
    job.init("j", {"job_bookmark_option": "job-bookmark-enable", "JOB_RUN_ID": "jr_10"})
    assert (glue_context._bookmarks.option, glue_context._bookmarks.run_id) == (
        "job-bookmark-enable",
        "jr_10",
    )


def test_a_run_that_fails_before_commit_writes_nothing(
    spark: Any, s3_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_csv(s3_root, "a.csv", [(1, "a")])
    out = tmp_path / "out.json"
    monkeypatch.setattr(sys, "argv", ["job.py", "--job-bookmark-option", "job-bookmark-enable"])
    monkeypatch.setenv("AWSGLUE_BOOKMARK_OUT", str(out))
    glue_context = GlueContext(spark.sparkContext)
    job = Job(glue_context)
    job.init("j")
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", SOURCE, "csv", {"withHeader": True}, transformation_ctx="source"
    )
    with pytest.raises(ValueError, match="not supported"):
        frame.write("dynamodb", {})
    # The script died here: commit never ran, so the next run still sees a.csv as new.
    assert not out.exists()
    assert glue_context._bookmarks is not None
    assert "source" in glue_context._bookmarks.staged
