"""What gluectl's command groups share: exit codes, the usage error, the handler types,
adding a command to the parser, and the clock.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from clients.glue_client import GlueClient
from clients.gluectl.output import FORMATS, Output


class ExitCode(IntEnum):
    """gluectl's exit statuses."""

    OK = 0
    """The command did what it was asked."""
    FAILED = 1
    """The operation failed: the service answered with a Glue error, a BatchStopJobRun id was
    refused, a wait gave up (--max-wait) before the run ended, or `triggers next` was given an
    invalid schedule."""
    USAGE = 2
    """The command line was wrong (argparse's status, a malformed --when), or a --from-json
    file unreadable."""
    UNREACHABLE = 3
    """The service could not be reached (or answered UNAVAILABLE): retrying later may work."""
    RUN_NOT_SUCCEEDED = 4
    """A waited-for run ended in a state other than SUCCEEDED."""


class UsageError(Exception):
    """The command line (or a file it names) cannot be turned into a request."""


Handler = Callable[[GlueClient, argparse.Namespace, Output], Awaitable[ExitCode]]
OfflineHandler = Callable[[argparse.Namespace, Output], ExitCode]
"""A command that needs no service (``triggers next``): no client is opened for it."""


def _add_output_option(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=default,
        help="json: the operation's Glue-form response, for scripts; table: for people "
        "(default: table)",
    )


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    common: argparse.ArgumentParser,
    handler: Handler | None,
    *,
    offline_handler: OfflineHandler | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    parser = group.add_parser(
        name,
        parents=[common],
        allow_abbrev=False,
        **kwargs,
    )
    if handler is not None:
        parser.set_defaults(handler=handler, parser=parser)
    if offline_handler is not None:
        parser.set_defaults(offline_handler=offline_handler, parser=parser)
    return parser


class _Group:
    """A command group (``jobs``, ``runs`` ...) whose actions all take the common options."""

    def __init__(
        self,
        commands: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
        name: str,
        help: str,
    ) -> None:
        self._common = common
        parser = _command(commands, name, common, None, help=help)
        self._actions = parser.add_subparsers(metavar="ACTION", dest="action", required=True)

    def action(self, name: str, handler: Handler | None, **kwargs: Any) -> argparse.ArgumentParser:
        """Add the action ``name``; ``kwargs`` as for ``_command`` (help, description ...)."""
        return _command(self._actions, name, self._common, handler, **kwargs)


def _now() -> datetime:
    return datetime.now(UTC)
