"""The class-data archive glueetl drivers share: written by the scheduler's warm-up, never by a
run, mapped after, ignored when stale or unfinished."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler_service.class_archive import (
    CLAIM_TTL_S,
    MAGIC,
    archive_key,
    claim_writing,
    driver_java_options,
)
from scheduler_service.commands import CommandSettings, LaunchPlan, plan_launch, spark_submit
from scheduler_service.run_access import Identity, java_path
from scheduler_service.warm_up import session_members
from tests.conftest import Stack
from tests.gateway.conftest import Aws
from tests.helpers.glueetl import glueetl_job, put, wait_state

SCRIPT = """from pyspark.context import SparkContext
from awsglue.context import GlueContext
glueContext = GlueContext(SparkContext())
print("rows", glueContext.spark_session.range(10).count())
"""
# Writes Parquet, which the trivial script above does not: its classes come from the archive only
# if the warm-up loaded them.
PARQUET_SCRIPT = """import os
from pyspark.context import SparkContext
from awsglue.context import GlueContext
glueContext = GlueContext(SparkContext())
glueContext.spark_session.range(10).write.parquet(os.getcwd() + "/out")
print("rows", 10)
"""
JARS = spark_submit().parent.parent / "jars"
# Someone other than the scheduler's user.
NOBODY = Identity(uid=65534, gid=65534, name="nobody")


def _java() -> Path:
    java = java_path(dict(os.environ))
    assert java is not None, "these tests need java"
    return java


def _archive(directory: Path) -> Path:
    key = archive_key(_java(), JARS)
    assert key is not None
    return directory / f"{key}.jsa"


@pytest.fixture
def scripts() -> Iterator[Path]:
    """A directory every user can read, for scripts planned as another identity."""
    directory = Path(tempfile.mkdtemp(prefix="class-archive-"))
    directory.chmod(0o755)
    (directory / "trivial.py").write_text(SCRIPT)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def _plan(script: Path, run_dir: Path, archives: Path, **settings: object) -> LaunchPlan:
    return plan_launch(
        {"JobName": "t", "_Command": {"Name": "glueetl", "ScriptLocation": str(script)}},
        "t",
        run_dir.name,
        {},
        run_dir,
        CommandSettings(python=sys.executable, class_archives=archives, **settings),  # type: ignore[arg-type]
    )


def _run(tmp_path: Path, run_id: str, archives: Path, script_text: str = SCRIPT) -> list[str]:
    """A glueetl run as the scheduler plans it (its driver logging the classes it loads to
    ``<run dir>/classes.log``); its argv."""
    script = tmp_path / f"{run_id}.py"
    script.write_text(script_text)
    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    plan = plan_launch(
        {"JobName": "t", "_Command": {"Name": "glueetl", "ScriptLocation": str(script)}},
        "t",
        run_id,
        {
            "--conf": "spark.driver.extraJavaOptions="
            f"-Xlog:class+load=info:file={run_dir / 'classes.log'}"
        },
        run_dir,
        CommandSettings(python=sys.executable, class_archives=archives),
    )
    done = subprocess.run(
        plan.argv,
        cwd=run_dir,
        env={**os.environ, **plan.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert "rows 10" in output
    assert "[cds" not in output and "shared archive" not in output.lower()
    return plan.argv


def test_runs_never_write_and_only_the_schedulers_own_ask_for_a_warm_up(
    tmp_path: Path, scripts: Path
) -> None:
    # Where other users may read an archive too.
    archives = scripts / "archives"
    script = scripts / "trivial.py"
    own = _plan(script, tmp_path / "jr_1", archives)
    # No archive: the run starts without one, and its launch asks for the warm-up.
    assert not any(
        "-XX:ArchiveClassesAtExit" in a or "-XX:SharedArchiveFile" in a for a in own.argv
    )
    assert own.archive_missing
    # As another identity a launch asks for nothing: the scheduler would be root.
    other = _plan(script, tmp_path / "jr_2", archives, run_identity=NOBODY)
    assert not other.archive_missing
    assert not any("-XX:ArchiveClassesAtExit" in arg for arg in other.argv)
    assert not list(archives.iterdir())  # planning claims nothing

    _archive(archives).write_bytes(MAGIC)
    for settings in ({}, {"run_identity": NOBODY}):
        plan = _plan(script, tmp_path / "jr_3", archives, **settings)
        assert any(f"-XX:SharedArchiveFile={_archive(archives)}" in a for a in plan.argv)
        assert not plan.archive_missing
    # One the run cannot read is not named: the JVM would then map no archive at all.
    unreadable = driver_java_options(archives, _java(), JARS, readable=lambda path: False)
    assert unreadable.options == [] and not unreadable.missing


def test_an_unfinished_archive_is_never_mapped(tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    java = _java()
    tmp = claim_writing(archives, java, JARS)
    assert tmp is not None
    # The JVM writes the header (and its magic number) last: until then the file is partial.
    tmp.write_bytes(bytes(4096))
    assert claim_writing(archives, java, JARS) is None  # claimed
    use = driver_java_options(archives, java, JARS)
    assert use.options == [] and use.missing
    assert not _archive(archives).exists()
    # Once the writer's claim has expired, a partial file is removed and the writing reclaimed.
    stale = time.time() - CLAIM_TTL_S - 1
    for path in archives.iterdir():
        os.utime(path, (stale, stale))
    again = claim_writing(archives, java, JARS)
    assert again is not None and again != tmp
    assert not tmp.exists()
    # A complete one is renamed into place by the next launch, and mapped.
    again.write_bytes(MAGIC)
    assert driver_java_options(archives, java, JARS).options[0] == (
        f"-XX:SharedArchiveFile={_archive(archives)}"
    )
    assert claim_writing(archives, java, JARS) is None


@pytest.mark.slow
async def test_the_warm_up_writes_an_archive_later_runs_map(
    tmp_path: Path, class_archives: Path
) -> None:
    # The session's: conftest.py's class_archives had the warm-up write it.
    archive = _archive(class_archives)
    assert archive.read_bytes()[:4] == MAGIC
    assert not list(class_archives.glob("*.tmp"))

    argv = await asyncio.to_thread(_run, tmp_path, "jr_1", class_archives, PARQUET_SCRIPT)
    assert any(f"-XX:SharedArchiveFile={archive}" in arg for arg in argv)
    loaded = (tmp_path / "runs" / "jr_1" / "classes.log").read_text()
    # The dynamic archive is the "top" layer, over the JDK's own.
    shared = "source: shared objects file (top)"
    assert f"org.apache.spark.SparkContext {shared}" in loaded
    assert f"org.apache.parquet.hadoop.ParquetOutputFormat {shared}" in loaded


@pytest.mark.slow
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
    argv = _run(tmp_path, "jr_1", archives)
    assert any("-XX:SharedArchiveFile=" in arg for arg in argv)


@pytest.mark.slow
@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
async def test_launches_start_at_once_one_warm_up_that_stopping_the_scheduler_kills(
    stack: Stack, aws: Aws, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_service.warm_up")
    # An archive directory of this test's own, empty (not the session's).
    archives = tmp_path / "archives"
    await stack.stop_scheduler()
    stack.scheduler_settings = dataclasses.replace(
        stack.scheduler_settings, class_archives=archives
    )
    await stack.start_scheduler()
    assert stack.scheduler is not None
    script = put(stack, "scripts/trivial.py", SCRIPT)
    await aws(
        "create_job", **glueetl_job("trivial", script, ExecutionProperty={"MaxConcurrentRuns": 2})
    )
    run_ids = [(await aws("start_job_run", JobName="trivial"))["JobRunId"] for _ in range(2)]
    for run_id in run_ids:
        await stack.wait_run("trivial", run_id, {"RUNNING", "SUCCEEDED"}, timeout=240)
    group = stack.scheduler.warm_up.process_group  # also its session
    # Both runs started while the warm-up (niced, its JVM's first seconds) still runs.
    assert group is not None
    assert os.getpriority(os.PRIO_PROCESS, group) == 19  # the lowest: runs go first
    started = [r for r in caplog.records if r.getMessage() == "class-data archive warm-up started"]
    assert len(started) == 1
    assert [p.name.partition(".")[2] for p in archives.glob("*.claim")] == ["claim"]

    await stack.stop_scheduler()
    assert session_members(group) == []
    # A killed warm-up leaves nothing: no archive, no partial .tmp, and no claim that would
    # keep the next scheduler from trying again.
    assert not _archive(archives).exists()
    assert list(archives.glob("*.tmp")) == []
    assert list(archives.glob("*.claim")) == []

    # The runs went on meanwhile (they outlive the scheduler); let them end before the next test.
    await stack.start_scheduler()
    for run_id in run_ids:
        assert (await wait_state(aws, "trivial", run_id))["JobRunState"] == "SUCCEEDED"
