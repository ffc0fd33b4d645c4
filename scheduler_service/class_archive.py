"""The class-data archive glueetl drivers share (Java's Application Class-Data Sharing).

A glueetl run's driver JVM loads and verifies the same few thousand Spark classes every time;
in a fresh JVM that is most of a first Spark job's cost (about 4 CPU-seconds of a 10 s trivial
run here). Java 17 can write the classes a JVM loaded to an archive when it exits
(``-XX:ArchiveClassesAtExit``) and map them from it at a later start
(``-XX:SharedArchiveFile``). So, per Spark install and JDK (``archive_key``):

- with no archive yet, one run (the one that claims ``<key>.claim``) writes
  ``<key>.<run id>.tmp`` when its JVM exits; the JVM writes the file's header last, so a
  ``.tmp`` that starts with the archive's magic number is complete, and the next launch renames
  it to ``<key>.jsa``. A partial archive is never mapped: one crashes the JVM that maps it;
- with ``<key>.jsa``, every run maps it. The JVM checks the archive against its class path
  (jar names, sizes, modification times) and JDK, and runs without it when they differ; its
  warning saying so is switched off, so a stale archive costs nothing but the time it saves;
- only runs that execute as the scheduler's own user write archives: an archive is code every
  later run loads, so a run as another identity must not be able to plant one.

The archive holds the classes of the run that wrote it (say the CSV reader's, if that run read
CSV); classes of later runs that it lacks load as before.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CLAIM_TTL_S", "MAGIC", "archive_key", "driver_java_options"]

# The first bytes of a JDK 17 dynamic archive (CDS_DYNAMIC_ARCHIVE_MAGIC 0xf00baba8, little
# endian), written once everything else is.
MAGIC = bytes.fromhex("a8ab0bf0")
# A run claims the writing of an archive for this long; past it (the run died before its JVM
# exited normally), another run may claim it.
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


def _promote_finished(directory: Path, key: str, archive: Path) -> None:
    """Rename a complete ``.tmp`` archive into place; remove dead ones."""
    for tmp in directory.glob(f"{key}.*.tmp"):
        try:
            with tmp.open("rb") as handle:
                complete = handle.read(len(MAGIC)) == MAGIC
            if complete:
                os.replace(tmp, archive)
            elif time.time() - tmp.stat().st_mtime > CLAIM_TTL_S:
                tmp.unlink()  # its JVM died while writing it
        except OSError:
            continue  # another launch renamed or removed it meanwhile


def _claim(claim: Path) -> bool:
    """Whether this run is the one to write the archive (one claim per CLAIM_TTL_S)."""
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
        return False  # another launch took it


def driver_java_options(
    directory: Path,
    run_id: str,
    java: Path | None,
    spark_jars: Path,
    may_write: bool,
    readable: Callable[[Path], bool] = os.path.isfile,
) -> list[str]:
    """The driver JVM's options for the shared archive: map it, write it, or nothing.

    Args:
        directory: where archives are kept (created when missing).
        run_id: the run, naming the archive it may write.
        java: the ``java`` the driver runs with (None: unknown, no archive).
        spark_jars: the directory of Spark's jars.
        may_write: whether this run may write the archive (it runs as the scheduler's user).
        readable: whether the run can read an archive. A JVM told to map a file it cannot
            open also stops mapping the JDK's own archive, so such a file is not named.
    """
    key = archive_key(java, spark_jars) if java is not None else None
    if key is None:
        return []
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError:
        return []
    archive = directory / f"{key}.jsa"
    if not archive.is_file():
        _promote_finished(directory, key, archive)
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}", _QUIET] if readable(archive) else []
    if may_write and _claim(directory / f"{key}.claim"):
        return [f"-XX:ArchiveClassesAtExit={directory / f'{key}.{run_id}.tmp'}", _QUIET]
    return []
