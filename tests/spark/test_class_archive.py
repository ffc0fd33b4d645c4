"""The class-data archive glueetl drivers share: written once, mapped after, ignored when stale."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler_service.class_archive import CLAIM_TTL_S, MAGIC, archive_key, driver_java_options
from scheduler_service.commands import CommandSettings, plan_launch, spark_submit
from scheduler_service.run_access import java_path

pytestmark = pytest.mark.slow

SCRIPT = """from pyspark.context import SparkContext
from awsglue.context import GlueContext
glueContext = GlueContext(SparkContext())
print("rows", glueContext.spark_session.range(10).count())
"""
JARS = spark_submit().parent.parent / "jars"


def _java() -> Path:
    java = java_path(dict(os.environ))
    assert java is not None, "these tests need java"
    return java


def _archive(directory: Path) -> Path:
    key = archive_key(_java(), JARS)
    assert key is not None
    return directory / f"{key}.jsa"


def _run(tmp_path: Path, run_id: str, archives: Path) -> tuple[list[str], str]:
    """A trivial glueetl run as the scheduler plans it; its argv and output."""
    script = tmp_path / "trivial.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    plan = plan_launch(
        {"JobName": "t", "_Command": {"Name": "glueetl", "ScriptLocation": str(script)}},
        "t",
        run_id,
        {},
        run_dir,
        CommandSettings(python=sys.executable, class_archives=archives),
    )
    done = subprocess.run(
        plan.argv,
        cwd=run_dir,
        env={**os.environ, **plan.env},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert "rows 10" in output
    return plan.argv, output


def test_one_run_writes_the_archive_and_later_runs_map_it(tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    argv, _ = _run(tmp_path, "jr_1", archives)
    assert any("-XX:ArchiveClassesAtExit=" in arg for arg in argv)
    archive = _archive(archives)
    # Written under the run's own name; the next launch, finding it complete, renames it.
    assert not archive.exists()
    assert [p.name for p in archives.glob("*.jr_1.tmp")] == [f"{archive.stem}.jr_1.tmp"]

    argv, output = _run(tmp_path, "jr_2", archives)
    assert archive.is_file() and archive.read_bytes()[:4] == MAGIC
    assert any(f"-XX:SharedArchiveFile={archive}" in arg for arg in argv)
    assert "[cds" not in output


def test_a_stale_archive_is_ignored_without_a_word(tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    archives.mkdir()
    # An archive of another class path: the JVM refuses to map it and runs without it.
    other = tmp_path / "other.jar"
    other.write_bytes(next(JARS.glob("commons-io-*.jar")).read_bytes())
    subprocess.run(
        [str(_java()), f"-XX:ArchiveClassesAtExit={_archive(archives)}", "-cp", str(other),
         "-version"],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert _archive(archives).read_bytes()[:4] == MAGIC
    argv, output = _run(tmp_path, "jr_1", archives)
    assert any("-XX:SharedArchiveFile=" in arg for arg in argv)
    assert "[cds" not in output and "shared archive" not in output.lower()


def test_an_unfinished_archive_is_never_mapped(tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    java = _java()
    options = driver_java_options(archives, "jr_1", java, JARS, may_write=True)
    tmp = archives / Path(options[0].partition("=")[2]).name
    # The JVM writes the header (and its magic number) last: until then the file is partial.
    tmp.write_bytes(bytes(4096))
    assert driver_java_options(archives, "jr_2", java, JARS, may_write=True) == []
    assert not _archive(archives).exists()
    # Once the writer's claim has expired, a partial file is removed and the writing reclaimed.
    stale = time.time() - CLAIM_TTL_S - 1
    for path in archives.iterdir():
        os.utime(path, (stale, stale))
    options = driver_java_options(archives, "jr_3", java, JARS, may_write=True)
    assert options[0].startswith("-XX:ArchiveClassesAtExit=")
    assert not tmp.exists()


def test_runs_as_other_users_only_map_an_archive(tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    assert driver_java_options(archives, "jr_1", _java(), JARS, may_write=False) == []
    _archive(archives).write_bytes(MAGIC)
    assert driver_java_options(archives, "jr_2", _java(), JARS, may_write=False)[0] == (
        f"-XX:SharedArchiveFile={_archive(archives)}"
    )
    # One the run cannot read is not named: the JVM would then map no archive at all.
    unreadable = driver_java_options(
        archives, "jr_3", _java(), JARS, may_write=False, readable=lambda path: False
    )
    assert unreadable == []
