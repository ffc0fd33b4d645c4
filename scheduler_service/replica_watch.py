"""Waits for one scheduler replica's process to end, then starts its site's caretaker.

Usage (``scheduler_service.app`` is the intended caller, as the replica's own child)::

    python -I -S -c BOOTSTRAP --runs-dir DIR -- CARETAKER_ARGV...

A replica's supervisors outlive it, and so does their outcome in each ``exit.json``; but only a
process with the scheduler's database can record those outcomes, and a replica on another
machine cannot see them. This watcher is what is left on the replica's machine to bring the
caretaker (``scheduler_service.caretaker``) up when the replica is gone, however it went -
``kill -9`` of its process group included.

Like the supervisor it is started the cheap way and imports only C-level modules: it lives as
long as its replica, one small process each. What it does:

1. Opens a pidfd on its parent, the replica, and checks that the parent is still that process.
2. Forks and lets the parent exit, so the replica reaps it at once and nothing of the replica
   (its asyncio child watcher, its process group) holds or kills the watcher.
3. Waits for the pidfd to report the replica's exit, then replaces itself with CARETAKER_ARGV,
   whose environment (the replica's settings) it inherited. ``--runs-dir`` is not used; it names
   the data directory on the command line, so an operator can tell whose watcher this is.
"""

from __future__ import annotations

import os
import select
import sys

# ``python -I -S -c BOOTSTRAP ...`` runs ``run_and_exit`` from this file's cached bytecode.
BOOTSTRAP = (
    "import sys; sys.path.append({directory!r}); import replica_watch; replica_watch.run_and_exit()"
)


def say(message: str) -> None:
    """One line on stderr (the replica points it at the site's caretaker log)."""
    os.write(2, f"replica_watch: {message}\n".encode("utf-8", "replace"))


def parse_args(args: list[str]) -> list[str]:
    """The caretaker's command line from ``--runs-dir DIR -- ARGV...``.

    Raises:
        ValueError: the command line is not of that form.
    """
    if len(args) < 4 or args[0] != "--runs-dir" or args[2] != "--":
        raise ValueError("usage: --runs-dir DIR -- CARETAKER_ARGV...")
    return args[3:]


def wait_for_exit(pidfd: int) -> None:
    """Block until the process behind ``pidfd`` has exited."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll():
        pass


def main(args: list[str]) -> int:
    """Watch the parent; when it is gone, exec the caretaker (never returns on success)."""
    try:
        argv = parse_args(args)
    except ValueError as exc:
        say(str(exc))
        return 2
    replica = os.getppid()
    pidfd: int | None
    try:
        pidfd = os.pidfd_open(replica)
    except OSError:
        pidfd = None
    if pidfd is not None and os.getppid() != replica:
        # The replica died before the pidfd was open: the pid may already name another process.
        os.close(pidfd)
        pidfd = None
    if os.fork() != 0:
        os._exit(0)
    if pidfd is not None:
        wait_for_exit(pidfd)
        os.close(pidfd)
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        say(f"cannot start the caretaker {argv[0]}: {exc}")
    return 1


def run_and_exit() -> None:
    """Entry point: ``main``, then exit without interpreter teardown."""
    os._exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run_and_exit()
