"""The class-data archive glueetl drivers share (Java's Application Class-Data Sharing).

A glueetl run's driver JVM loads and verifies the same few thousand Spark classes every time;
in a fresh JVM that is most of a first Spark job's cost (about 4 CPU-seconds of a 10 s trivial
run here). Java 17 can write the classes a JVM loaded to an archive when it exits
(``-XX:ArchiveClassesAtExit``) and map them from it at a later start
(``-XX:SharedArchiveFile``). So, per Spark install and JDK (``archive_key``):

- with no archive yet, a launch says so (``ArchiveUse.missing``) and runs without one; the
  scheduler then claims ``<key>.claim`` (``claim_writing``) and runs a warm-up script
  (``warm_up``) whose JVM writes ``<key>.warm-up-<random>.tmp`` when it exits. Runs never write
  one: a run's archive would hold only its own classes (a trivial script's, none of the CSV
  reader's), while the warm-up goes through what scripts commonly do. The JVM writes the file's
  header last, so a ``.tmp`` that starts with the archive's magic number is complete, and it is
  renamed to ``<key>.jsa`` (``promote_finished``). A partial archive is never mapped: one
  crashes the JVM that maps it;
- with ``<key>.jsa``, every run maps it. The JVM checks the archive against its class path
  (jar names, sizes, modification times) and JDK, and runs without it when they differ; its
  warning saying so is switched off, so a stale archive costs nothing but the time it saves;
- only the scheduler's own user writes archives: an archive is code every later run loads, so
  nothing a run as another identity does may plant one.

Classes of later runs that the archive lacks load as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLAIM_TTL_S",
    "MAGIC",
    "ArchiveUse",
    "archive_key",
    "claim_writing",
    "driver_java_options",
    "finish_writing",
    "promote_finished",
    "release_claim",
    "write_options",
]

# The first bytes of a JDK 17 dynamic archive (CDS_DYNAMIC_ARCHIVE_MAGIC 0xf00baba8, little
# endian), written once everything else is.
MAGIC = bytes.fromhex("a8ab0bf0")
# A warm-up claims the writing of an archive for this long; past it (its JVM died before it
# exited normally, or its scheduler stopped and killed it), another may claim it.
CLAIM_TTL_S = 3600.0
# Mapping an archive that does not match (another JDK or class path) is refused with a warning;
# the run goes on without it, so the warning is noise in the run's log.
_QUIET = "-Xlog:cds=off,cds+dynamic=off"


def archive_key(java: Path, spark_jars: Path) -> str | None:
    """Names the archive of one JDK and one Spark install (its jars); None without them.

    Args:
        java: the ``java`` the driver runs with.
        spark_jars: the directory of Spark's jars (the driver's class path).
    """
    digest = hashlib.sha256()
    try:
        for path in [java.resolve(), *sorted(spark_jars.iterdir())]:
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        digest.update(str(java.resolve()).encode())
    except OSError:
        return None
    return "spark-" + digest.hexdigest()[:24]


def promote_finished(directory: Path, key: str) -> None:
    """Rename a complete ``.tmp`` archive of ``key`` into place; remove dead ones."""
    archive = directory / f"{key}.jsa"
    for tmp in directory.glob(f"{key}.*.tmp"):
        try:
            if _complete(tmp):
                os.replace(tmp, archive)
            elif time.time() - tmp.stat().st_mtime > CLAIM_TTL_S:
                tmp.unlink()  # its JVM died while writing it
        except OSError:
            continue  # another launch renamed or removed it meanwhile


def finish_writing(tmp: Path) -> bool:
    """After a warm-up's JVM exited: whether it wrote a complete archive to ``tmp`` (from
    ``claim_writing``); a complete one is renamed into place at once."""
    try:
        complete = _complete(tmp)
    except OSError:
        return False
    if complete:
        promote_finished(tmp.parent, _key_of(tmp))
    return complete


def release_claim(tmp: Path) -> None:
    """Give a killed warm-up's claim back: remove its partial ``tmp`` and ``<key>.claim``, so
    the next warm-up may start at once."""
    for path in (tmp, tmp.parent / f"{_key_of(tmp)}.claim"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _complete(tmp: Path) -> bool:
    """Whether the JVM finished writing ``tmp`` (its header, with the magic, comes last)."""
    with tmp.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def _key_of(tmp: Path) -> str:
    """The archive key of a warm-up's ``<key>.warm-up-<random>.tmp``."""
    return tmp.name.partition(".")[0]


def _claim(claim: Path) -> bool:
    """Whether this warm-up is the one to write the archive (one claim per CLAIM_TTL_S)."""
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        pass
    try:
        if time.time() - claim.stat().st_mtime <= CLAIM_TTL_S:
            return False
        claim.unlink()
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except OSError:
        return False  # another scheduler took it


@dataclass(frozen=True, slots=True)
class ArchiveUse:
    """What a run's driver does with the shared archive."""

    options: list[str]
    """The driver JVM's options: map the archive, or nothing."""
    missing: bool
    """No archive exists yet for this Spark and JDK (a warm-up may write one)."""


def driver_java_options(
    directory: Path,
    java: Path | None,
    spark_jars: Path,
    readable: Callable[[Path], bool] = os.path.isfile,
) -> ArchiveUse:
    """The driver JVM's options for the shared archive: map it when there is one.

    Args:
        directory: where archives are kept (created when missing).
        java: the ``java`` the driver runs with (None: unknown, no archive).
        spark_jars: the directory of Spark's jars.
        readable: whether the run can read an archive. A JVM told to map a file it cannot
            open also stops mapping the JDK's own archive, so such a file is not named.
    """
    key = archive_key(java, spark_jars) if java is not None else None
    if key is None:
        return ArchiveUse([], missing=False)
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError:
        return ArchiveUse([], missing=False)
    archive = directory / f"{key}.jsa"
    if not archive.is_file():
        promote_finished(directory, key)
    if not archive.is_file():
        return ArchiveUse([], missing=True)
    if not readable(archive):
        return ArchiveUse([], missing=False)
    return ArchiveUse([f"-XX:SharedArchiveFile={archive}", _QUIET], missing=False)


def claim_writing(directory: Path, java: Path | None, spark_jars: Path) -> Path | None:
    """The ``.tmp`` file a warm-up's JVM is to write the archive to, once this caller holds
    ``<key>.claim``; None when the archive exists, another holds the claim, or there is no key.

    Args:
        directory: where archives are kept (created when missing).
        java: the ``java`` the warm-up runs with.
        spark_jars: the directory of Spark's jars.
    """
    key = archive_key(java, spark_jars) if java is not None else None
    if key is None:
        return None
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError:
        return None
    promote_finished(directory, key)
    if (directory / f"{key}.jsa").is_file() or not _claim(directory / f"{key}.claim"):
        return None
    return directory / f"{key}.warm-up-{secrets.token_hex(4)}.tmp"


def write_options(tmp: Path) -> list[str]:
    """The warm-up driver JVM's options: write the archive to ``tmp`` at exit."""
    return [f"-XX:ArchiveClassesAtExit={tmp}", _QUIET]
