"""A run's stdout and stderr kept apart: the supervisor's output.idx, read back by run_log."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scheduler_service import run_log, supervisor
from scheduler_service.run_outcome import OUTPUT_LOG, OutcomeKind
from scheduler_service.runner import ProcessRunner
from scheduler_service.sandbox import Sandbox

INTERLEAVED = """
import sys, time
for i in range(3):
    print(f"out {i}", flush=True)
    time.sleep(0.02)
    print(f"err {i}", file=sys.stderr, flush=True)
    time.sleep(0.02)
print("no newline at the end", end="", flush=True)
"""

# Stderr before and after a stdout flood that overflows the cap: both must stay stderr.
FLOOD = """
import sys
print("err first", file=sys.stderr, flush=True)
out = sys.stdout
for i in range(40000):
    out.write(f"line {i:06d} " + "." * 40 + "\\n")
out.flush()
print("err last", file=sys.stderr, flush=True)
"""


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


async def run(runs_dir: Path, run_id: str, body: str, sandbox: Sandbox | None = None) -> Path:
    """Run a script under the supervisor; its run directory."""
    script = runs_dir.parent / f"{run_id}.py"
    script.write_text(textwrap.dedent(body))
    runner = ProcessRunner(runs_dir, stop_grace=5.0, sandbox=sandbox)
    handle = await runner.launch(
        run_id, [sys.executable, str(script)], None, env={"PATH": os.environ["PATH"]}
    )
    outcome = await asyncio.wait_for(handle.wait(), 30)
    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    return runner.run_dir(run_id)


async def test_stdout_and_stderr_are_kept_apart_in_order_with_times(runs_dir: Path) -> None:
    before = int(time.time() * 1000)
    run_dir = await run(runs_dir, "jr_apart", INTERLEAVED)
    after = int(time.time() * 1000)
    log = run_log.RunLog(str(run_dir))
    log.refresh()

    both = list(log.lines(0, None))
    assert [(line.stream, line.text) for line in both] == [
        *[
            pair
            for i in range(3)
            for pair in (("stdout", b"out %d" % i), ("stderr", b"err %d" % i))
        ],
        ("stdout", b"no newline at the end"),
    ]
    # output.log itself is unchanged: the plain interleaved text.
    assert (run_dir / OUTPUT_LOG).read_bytes() == b"".join(
        line.text + b"\n" for line in both
    ).removesuffix(b"\n")
    stamps = [line.timestamp for line in both]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    # Written 20 ms apart, so the times tell the lines apart.
    assert stamps[-2] - stamps[0] >= 80
    assert [line.text for line in log.lines(0, "stderr")] == [b"err 0", b"err 1", b"err 2"]
    # Offsets are where each line starts in output.log: a reader resumes from any of them.
    third = both[2]
    assert [line.text for line in log.lines(third.offset, "stdout")] == [
        b"out 1",
        b"out 2",
        b"no newline at the end",
    ]

    # Raw chunks of one stream skip the other's bytes and say where to resume.
    chunks = run_log.read_chunks(log, 0, "stderr")
    assert b"".join(data for data, _, _ in chunks) == b"err 0\nerr 1\nerr 2\n"
    assert chunks[-1][2] == log.end == (run_dir / OUTPUT_LOG).stat().st_size

    # Events: the last two stdout lines going backward; a time bound excluding all of them.
    lines, reached = run_log.events(
        log, 0, "stdout", start_time=0, end_time=0, limit=2, backward=True
    )
    assert [line.text for line in lines] == [b"out 2", b"no newline at the end"]
    assert reached == lines[0].offset
    lines, reached = run_log.events(
        log, 0, None, start_time=after + 1, end_time=0, limit=10, backward=False
    )
    assert lines == [] and reached == log.end


async def test_a_capped_log_keeps_each_line_with_its_stream_across_the_cut(
    runs_dir: Path,
) -> None:
    cap = 200_000
    run_dir = await run(runs_dir, "jr_flood", FLOOD, Sandbox(max_log_bytes=cap))
    log = run_log.RunLog(str(run_dir))
    log.refresh()

    # The segments tile output.log exactly, in order.
    size = (run_dir / OUTPUT_LOG).stat().st_size
    assert log.segments[0].start == 0 and log.segments[-1].end == size == log.end
    for earlier, later in zip(log.segments, log.segments[1:], strict=False):
        assert earlier.end == later.start
    assert [line.text for line in log.lines(0, "stderr")][:1] == [b"err first"]
    stderr = [line.text for line in log.lines(0, "stderr")]
    # The cut line belongs to both streams; no stdout line is in stderr's.
    assert stderr[0] == b"err first" and stderr[-1] == b"err last" and len(stderr) == 3
    assert stderr[1].startswith(b"[... ") and b"bytes of output cut here" in stderr[1]
    stdout = [line.text for line in log.lines(0, "stdout")]
    assert stdout[0] == b"line 000000 " + b"." * 40
    assert stdout[-1] == b"line 039999 " + b"." * 40
    assert b"err" not in b"".join(stdout)
    # Every stdout line after the cut is whole, and numbered in order.
    after_cut = stdout[stdout.index(stderr[1]) + 1 :]
    numbers = [int(text.split()[1]) for text in after_cut]
    assert numbers == list(range(numbers[0], 40000))


async def test_a_log_from_before_the_index_reads_as_stdout(tmp_path: Path) -> None:
    run_dir = tmp_path / "jr_old"
    run_dir.mkdir()
    (run_dir / OUTPUT_LOG).write_bytes(b"old line 1\nold line 2\n")
    os.utime(run_dir / OUTPUT_LOG, (1_700_000_000, 1_700_000_000))
    log = run_log.RunLog(str(run_dir))
    log.refresh()

    lines = list(log.lines(0, None))
    assert [(line.stream, line.text, line.timestamp) for line in lines] == [
        ("stdout", b"old line 1", 1_700_000_000_000),
        ("stdout", b"old line 2", 1_700_000_000_000),
    ]
    assert list(log.lines(0, "stderr")) == []
    # Nothing of stderr's, but a reader following it may move past the stdout bytes.
    assert run_log.read_chunks(log, 0, "stderr") == [(b"", 22, 22)]


def test_a_reader_following_a_live_log_sees_each_line_once(tmp_path: Path) -> None:
    # The supervisor's writer and the scheduler's reader, turn by turn as during a run.
    output = supervisor.OutputLog(str(tmp_path), None, 0o600)
    log = run_log.RunLog(str(tmp_path))
    seen: list[tuple[str, bytes]] = []
    offset = 0

    def follow() -> None:
        nonlocal offset
        log.refresh()
        for line in log.lines(offset, None):
            seen.append((line.stream, line.text))
            offset = line.end

    output.write(b"a\n", supervisor.STDOUT_CODE)
    output.write(b"b\n", supervisor.STDOUT_CODE)
    follow()  # held in memory: nothing to read yet, and nothing half read
    output.sync_index()  # what the supervisor does when the pipes go quiet
    follow()
    assert seen == [("stdout", b"a"), ("stdout", b"b")]
    output.write(b"oops\n", supervisor.STDERR_CODE)
    output.sync_index()
    follow()
    output.write(b"c\n", supervisor.STDOUT_CODE)
    output.close()
    follow()
    assert seen == [("stdout", b"a"), ("stdout", b"b"), ("stderr", b"oops"), ("stdout", b"c")]


def test_output_a_killed_supervisor_did_not_index_is_read_once_the_run_ended(
    tmp_path: Path,
) -> None:
    output = supervisor.OutputLog(str(tmp_path), None, 0o600)
    output.write(b"indexed\n", supervisor.STDERR_CODE)
    output.sync_index()
    output.write(b"not indexed\n", supervisor.STDOUT_CODE)
    # No close: the supervisor was killed with the last record still in memory.
    live = run_log.RunLog(str(tmp_path))
    live.refresh()
    assert [line.text for line in live.lines(0, None)] == [b"indexed"]
    ended = run_log.RunLog(str(tmp_path), finished=True)
    ended.refresh()
    assert [(line.stream, line.text) for line in ended.lines(0, None)] == [
        ("stderr", b"indexed"),
        ("stderr", b"not indexed"),
    ]
    os.close(output.fd)
    os.close(output.index_fd)
