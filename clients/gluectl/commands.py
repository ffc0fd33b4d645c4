"""gluectl's commands: the argument parser and running one command (the commands themselves are
in the module of their group: ``jobs``, ``runs``, ``bookmarks``, ``triggers``, ``tags``).

Each command makes its calls through one ``GlueClient`` and returns an ``ExitCode``; errors
are left to propagate as ``GlueError`` / ``UsageError`` / ``WaitTimeoutError``, and
``__main__.main`` turns them into the one line on stderr and the exit code. ``triggers next``
is the one offline command: a plain function that never opens a client.

The rule between exit codes 1 and 2: a command line gluectl cannot turn into a request (unknown
flags, a malformed ``--when``, an unreadable ``--from-json``) is a usage error (2); a request
the service refuses is a failed operation (1). An invalid schedule is a failed operation
wherever it is found: ``triggers create --schedule`` gets the service's InvalidInputException,
and ``triggers next`` prints that same line itself.
"""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path
from typing import Final

from clients.credentials import CredentialsError, channel_credentials, find_credentials
from clients.glue_client import GlueClient
from clients.gluectl.arguments import _positive_float
from clients.gluectl.bookmarks import _add_bookmarks_commands
from clients.gluectl.command_kit import (
    ExitCode,
    Handler,
    OfflineHandler,
    UsageError,
    _add_output_option,
    _command,
)
from clients.gluectl.jobs import _add_jobs_commands
from clients.gluectl.output import TABLE, Output
from clients.gluectl.runs import _add_runs_commands, logs_command
from clients.gluectl.tags import _add_tags_commands
from clients.gluectl.triggers import _add_triggers_commands

DEFAULT_ENDPOINT: Final = "127.0.0.1:50051"
DISTRIBUTION: Final = "glue-scheduler"


EXIT_CODES_HELP: Final = """\
exit codes:
  0  ok
  1  the operation failed (a Glue error, printed as one line on stderr:
     "gluectl: EntityNotFoundException: Job x not found."); also: a run that
     `runs stop` could not stop, --max-wait ran out, or
     `triggers next` was given an invalid schedule (it prints the line
     CreateTrigger would answer, naming the bad field)
  2  usage error (including a malformed --when)
  3  the service is unreachable (or answered UNAVAILABLE); retry later
  4  a waited-for run (runs start --wait, runs wait) ended in a state other
     than SUCCEEDED

environment:
  GLUECTL_ENDPOINT  the default for --endpoint
  GLUECTL_TLS_CA    the default for --tls-ca
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE
                    the access key, found as the aws CLI finds it: --profile, else these
                    variables, else ~/.aws/credentials [default]

AWS tools:
  boto3 and the aws CLI work against the catalog's HTTP gateway (catalog
  --http-listen; `make run` serves it at 127.0.0.1:50080) given its endpoint
  URL, a region and any access key (one from its --access-keys file, if set):
    aws glue --endpoint-url http://127.0.0.1:50080 list-jobs
    boto3.client("glue", endpoint_url="http://127.0.0.1:50080",
                 region_name="us-east-1")
    export AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:50080  # botocore honours it
"""


def gluectl_version() -> str:
    """The installed project's version (gluectl ships with the services)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(
    *, default_endpoint: str = DEFAULT_ENDPOINT, default_tls_ca: str | None = None
) -> argparse.ArgumentParser:
    """gluectl's parser; each command's parser sets ``handler`` and ``parser``."""
    parser = argparse.ArgumentParser(
        prog="gluectl",
        description="Manage Glue jobs, job runs, job bookmarks, triggers and their tags on a "
        "self-hosted Glue scheduler.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        default=default_endpoint,
        help="the catalog service's address (default: %(default)s; env GLUECTL_ENDPOINT)",
    )
    _add_output_option(parser, default=TABLE)
    parser.add_argument(
        "--profile",
        help="use this profile's access key from the shared credentials file (env AWS_PROFILE)",
    )
    parser.add_argument(
        "--access-key-id",
        help="the access key to call with (safer: AWS_ACCESS_KEY_ID or a profile; a secret on "
        "the command line is visible to other users of the machine)",
    )
    parser.add_argument("--secret-access-key", help="the secret of --access-key-id")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, checking the service's certificate against the system's CAs",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default_tls_ca,
        help="connect over TLS, checking the service's certificate against this CA "
        "(env GLUECTL_TLS_CA)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="a client certificate to present (with --tls-key)"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert")
    parser.add_argument(
        "--call-timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=30.0,
        dest="rpc_timeout",
        help="deadline of each call to the service (default: %(default)gs); log streams that "
        "follow a run are not limited by it (how long to wait for a run: --max-wait)",
    )
    parser.add_argument(
        "--full-ids",
        action="store_true",
        help="print whole run ids in tables (default: shortened to fit 100 columns; "
        "`runs start`, -o json and `runs get` always print them whole)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gluectl_version()}")
    # -o also after the command (`gluectl jobs get x -o json`); SUPPRESS leaves the value given
    # before the command in place when it is not repeated.
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_output_option(common, default=argparse.SUPPRESS)

    commands = parser.add_subparsers(metavar="COMMAND", dest="command", required=True)
    _add_jobs_commands(commands, common)
    _add_runs_commands(commands, common)
    _add_bookmarks_commands(commands, common)
    _add_triggers_commands(commands, common)
    _add_tags_commands(commands, common)

    logs = _command(
        commands,
        "logs",
        common,
        logs_command,
        help="print a run's log (stdout and stderr of its process)",
        description="Write a run's captured stdout and stderr to stdout, byte for byte, "
        "interleaved as the job wrote them (--output does not apply).",
    )
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until the run ends"
    )
    logs.add_argument(
        "--stream",
        choices=("stdout", "stderr"),
        help="print only the lines the job wrote to this stream (default: both)",
    )
    return parser


async def run(args: argparse.Namespace, out: Output) -> ExitCode:
    """Run the parsed command: offline, or against the service at ``args.endpoint``."""
    offline: OfflineHandler | None = getattr(args, "offline_handler", None)
    if offline is not None:
        return offline(args, out)
    handler: Handler = args.handler
    try:
        credentials = find_credentials(
            args.access_key_id, args.secret_access_key, profile=args.profile
        )
        tls = None
        if args.tls or args.tls_ca or args.tls_cert:
            if (args.tls_cert is None) != (args.tls_key is None):
                raise CredentialsError("--tls-cert and --tls-key go together")
            tls = channel_credentials(
                Path(args.tls_ca) if args.tls_ca else None,
                cert_file=Path(args.tls_cert) if args.tls_cert else None,
                key_file=Path(args.tls_key) if args.tls_key else None,
            )
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    async with GlueClient(
        args.endpoint, timeout=args.rpc_timeout, credentials=credentials, tls=tls
    ) as client:
        return await handler(client, args, out)
