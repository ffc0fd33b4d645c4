"""A run's output as the supervisor leaves it, read back per stream and per line.

The supervisor (``supervisor.OutputLog``) writes ``output.log``, the job's stdout and stderr
interleaved as plain text, and ``output.idx``, which says who wrote each piece and when. This
module turns the two into ``Segment``s (a stretch of output.log written by one stream at one
millisecond) and lines (``LogLine``), by byte offset in output.log - the position every reader
(gluectl's follow mode, CloudWatch Logs' tokens) resumes from.

A run directory from before the index (no ``output.idx``) reads as stdout only, every line
timed at the file's modification time.

Everything here is blocking file I/O: the servicer calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import itertools
import os
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from glue_vocabulary import log_groups
from scheduler_service import supervisor as _sv

STDOUT = log_groups.STDOUT
STDERR = log_groups.STDERR
_NAMES = {_sv.STDOUT_CODE: STDOUT, _sv.STDERR_CODE: STDERR}
_RECORD = struct.Struct("<QQ")


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch ``[start, end)`` of output.log written by one stream at one time."""

    start: int
    end: int
    # STDOUT or STDERR; None for the line saying what the cap cut (it belongs to both).
    stream: str | None
    # Epoch milliseconds.
    timestamp: int


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of output: where it starts in output.log, when and by whom it was written."""

    offset: int
    end: int
    timestamp: int
    stream: str
    text: bytes


class RunLog:
    """One run's output.log and output.idx; ``refresh`` reads what was added since."""

    def __init__(self, run_dir: str, *, finished: bool = False) -> None:
        """Nothing is read until ``refresh``.

        Args:
            run_dir: The run's directory.
            finished: The run has ended: output the index does not cover (a supervisor
                killed before writing its last records) is read as the last record's.
        """
        self.finished = finished
        self.log_path = os.path.join(run_dir, _sv.OUTPUT_LOG)
        self.index_path = os.path.join(run_dir, _sv.OUTPUT_INDEX)
        self.segments: list[Segment] = []
        self._ends: list[int] = []
        self._records: list[tuple[int, int]] = []
        self._index_read = 0
        # Where to take up building again: only the last record can still change (it grows
        # while its stream keeps writing), so a refresh redoes it and adds what follows.
        self._redo_record = 0
        self._redo_segments = 0
        self._redo_begin = 0

    def refresh(self) -> None:
        """Read the index's new records (the last one may have grown) and rebuild segments."""
        try:
            with open(self.index_path, "rb") as index:
                # The last record may have been extended since: read it again.
                start = max(0, self._index_read - _RECORD.size)
                index.seek(start)
                data = index.read()
        except FileNotFoundError:
            self._without_index()
            return
        whole = len(data) - len(data) % _RECORD.size
        if start < self._index_read:
            del self._records[-1:]
        self._records.extend(_RECORD.iter_unpack(data[:whole]))
        self._index_read = start + whole
        self._build()

    def _without_index(self) -> None:
        """A log written before the index existed: all stdout, at the file's time."""
        try:
            info = os.stat(self.log_path)
        except FileNotFoundError:
            self.segments, self._ends = [], []
            return
        stamp = int(info.st_mtime * 1000)
        self.segments = [Segment(0, info.st_size, STDOUT, stamp)] if info.st_size else []
        self._ends = [s.end for s in self.segments]

    def _build(self) -> None:
        records = self._records
        cut: tuple[int, int, int] | None = None
        first = self._redo_record
        if len(records) >= 2 and records[-1][1] & 3 == _sv.CUT_CODE:
            # Where the head ends, where the kept part starts (whole output), and where it
            # starts in output.log: see supervisor.OutputLog. Written once, at the end: the
            # segments are built again from the start, once.
            head_end, kept_from, kept_at = records[-2][0], records[-1][0], records[-1][1] >> 2
            cut = (head_end, kept_from, kept_at)
            records = records[:-2]
            first = self._redo_segments = self._redo_begin = 0
        try:
            size = os.path.getsize(self.log_path)
        except FileNotFoundError:
            size = 0
        segments = self.segments[: self._redo_segments]
        begin = self._redo_begin
        cut_placed = False
        for index in range(first, len(records)):
            end, stamp = records[index]
            if index == len(records) - 1:
                self._redo_record, self._redo_segments, self._redo_begin = (
                    index,
                    len(segments),
                    begin,
                )
            stream = _NAMES.get(stamp & 3, STDOUT)
            moment = stamp >> 2
            if cut is None:
                pieces = [(begin, end)]
            else:
                head_end, kept_from, kept_at = cut
                shift = kept_at - kept_from
                pieces = [(begin, min(end, head_end))]
                if end > head_end and not cut_placed:
                    # The cut line lies between the head and the kept part.
                    pieces.append((head_end, kept_at))
                    cut_placed = True
                pieces.append((max(begin, kept_from) + shift, end + shift))
            for low, high in pieces:
                high = min(high, size)  # a live run's tail is not in output.log yet
                if low < high:
                    is_cut = cut is not None and low == cut[0] and high == cut[2]
                    segments.append(Segment(low, high, None if is_cut else stream, moment))
            begin = end
        if cut is None and self.finished and records and begin < size:
            stamp = records[-1][1]
            segments.append(Segment(begin, size, _NAMES.get(stamp & 3, STDOUT), stamp >> 2))
        self.segments = segments
        self._ends = [s.end for s in segments]

    @property
    def end(self) -> int:
        """The offset up to which output.log is indexed (readable)."""
        return self._ends[-1] if self._ends else 0

    def segments_from(self, offset: int) -> Iterator[Segment]:
        """The segments that end after ``offset``, the first one clipped to start there."""
        first = bisect_right(self._ends, offset)
        for segment in self.segments[first:]:
            if segment.start < offset:
                segment = Segment(offset, segment.end, segment.stream, segment.timestamp)
            yield segment

    def read(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of output.log."""
        with open(self.log_path, "rb") as log:
            log.seek(start)
            return log.read(end - start)

    def lines(self, offset: int, stream: str | None) -> Iterator[LogLine]:
        """The lines from ``offset`` on, of ``stream`` (None: both), oldest first."""
        for segment in self.segments_from(offset):
            if stream is not None and segment.stream not in (None, stream):
                continue
            yield from _split(segment, self.read(segment.start, segment.end), stream)

    def lines_before(self, offset: int, stream: str | None) -> Iterator[LogLine]:
        """The lines that end at or before ``offset`` (0: the end), newest first."""
        limit = offset or self.end
        first = bisect_right(self._ends, limit)
        for segment in reversed(self.segments[: min(first + 1, len(self.segments))]):
            if segment.start >= limit:
                continue
            if stream is not None and segment.stream not in (None, stream):
                continue
            clipped = Segment(
                segment.start, min(segment.end, limit), segment.stream, segment.timestamp
            )
            yield from reversed(
                list(_split(clipped, self.read(clipped.start, clipped.end), stream))
            )


def _split(segment: Segment, data: bytes, stream: str | None) -> Iterator[LogLine]:
    """A segment's bytes as lines; the cut line is given the stream asked for."""
    name = segment.stream or stream or STDOUT
    at = 0
    while at < len(data):
        newline = data.find(b"\n", at)
        stop = len(data) if newline < 0 else newline + 1
        text = data[at:stop].rstrip(b"\n")
        # The cut line begins with a newline of its own (ending a head cut mid-line).
        if text or segment.stream is not None:
            yield LogLine(segment.start + at, segment.start + stop, segment.timestamp, name, text)
        at = stop


# What one ReadRunLog message carries at most: raw bytes, or lines in events mode.
CHUNK_BYTES = 64 * 1024
EVENTS_PER_MESSAGE = 1000
# Raw chunks read per call into a worker thread (1 MiB).
CHUNKS_PER_READ = 16


def chunks(log: RunLog, offset: int, stream: str | None) -> Iterator[tuple[bytes, int, int]]:
    """What is readable from ``offset`` now, as (data, offset, next_offset) of at most
    CHUNK_BYTES; with ``stream``, only its bytes (and the cut line), skipping the other's."""
    log.refresh()
    if stream is None:
        # Both streams: the file as written, up to what the index covers.
        while offset < log.end:
            data = log.read(offset, min(log.end, offset + CHUNK_BYTES))
            if not data:
                return
            yield data, offset, offset + len(data)
            offset += len(data)
        return
    pending: list[bytes] = []
    size, start = 0, offset
    for segment in log.segments_from(offset):
        if segment.stream in (None, stream):
            at = segment.start
            while at < segment.end:
                piece = log.read(at, min(segment.end, at + CHUNK_BYTES - size))
                if not piece:
                    break
                if not pending:
                    start = at
                pending.append(piece)
                size += len(piece)
                at += len(piece)
                if size >= CHUNK_BYTES:
                    yield b"".join(pending), start, at
                    pending, size = [], 0
        offset = segment.end
    if pending:
        yield b"".join(pending), start, offset
    elif offset > start:
        # Only the other stream's output: nothing to send, but the reader may move past it.
        yield b"", offset, offset


def read_chunks(log: RunLog, offset: int, stream: str | None) -> list[tuple[bytes, int, int]]:
    """The first CHUNKS_PER_READ of ``chunks`` (what one worker-thread call reads: a reader of
    a whole 64 MiB log must not hold it all in memory at once)."""
    return list(itertools.islice(chunks(log, offset, stream), CHUNKS_PER_READ))


def events(
    log: RunLog,
    offset: int,
    stream: str | None,
    *,
    start_time: int,
    end_time: int,
    limit: int,
    backward: bool,
) -> tuple[list[LogLine], int]:
    """Lines of ``stream`` within the time bounds (0: none), oldest first, and where the scan
    stopped: from ``offset`` on, at most ``limit``; with ``backward``, the last ``limit``
    ending at or before ``offset`` (0: the end of the log).

    The offset returned is where the next read in the same direction continues: after the last
    line looked at (forward; the indexed end when all was read), or at the first (backward).
    """
    log.refresh()
    found: list[LogLine] = []
    source = log.lines_before(offset, stream) if backward else log.lines(offset, stream)
    for line in source:
        if not (start_time and line.timestamp < start_time) and not (
            end_time and line.timestamp > end_time
        ):
            found.append(line)
        if len(found) >= limit:
            reached = line.offset if backward else line.end
            break
    else:
        reached = 0 if backward else max(offset, log.end)
    if backward:
        found.reverse()
    return found, reached
