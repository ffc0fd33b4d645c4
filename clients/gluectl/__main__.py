# PYTHON_ARGCOMPLETE_OK  (argcomplete looks for this marker: completion is opt-in, see main)
"""gluectl's entry point: parse, run one command, turn the outcome into an exit status.

Example session::

    gluectl jobs create nightly --script ./nightly.py --arg day=mon
    gluectl runs start nightly --arg day=tue --wait    # --follow: print its log too
    gluectl runs list nightly
    gluectl runs list --state FAILED --since 24h      # across jobs
    gluectl logs nightly jr_... -f
    gluectl runs stop nightly jr_...
    gluectl bookmarks get nightly
    gluectl bookmarks reset nightly --run-id jr_...
    gluectl triggers next 'cron(0 2 * * ? *)' -n 3
    gluectl triggers create nightly-2am --schedule 'cron(0 2 * * ? *)' --action nightly --start
    gluectl triggers create then-report --when 'nightly=SUCCEEDED' --action report --start
    gluectl triggers fires nightly-2am
    gluectl tags add --job nightly team=data env=prod
    gluectl tags get --trigger nightly-2am
    gluectl tags remove --arn arn:aws:glue:us-east-1:000000000000:job/nightly env

Exit codes:

- 0: ok.
- 1: the operation failed: the service answered with a Glue error (printed as one line on
  stderr, ``gluectl: EntityNotFoundException: Job x not found.``), ``runs stop`` could not stop
  a run, ``--max-wait`` ran out, or ``triggers next`` was given an invalid schedule
  (it prints the very line CreateTrigger answers, ``gluectl: InvalidInputException: Schedule:
  Day-of-week: 8 is out of range 1-7 (SUN-SAT)``: an invalid schedule is a failed operation
  whether the service or gluectl finds it).
- 2: usage error (argparse, including a malformed ``--when``), or an unreadable ``--from-json``
  file: gluectl could not turn the command line into a request.
- 3: the service is unreachable (or answered UNAVAILABLE); retrying later may work.
- 4: a waited-for run (``runs start --wait``, ``runs wait``) ended in a state other than
  SUCCEEDED.

AWS tools: boto3 and the aws CLI work against the catalog's HTTP gateway (``--http-listen`` /
``CATALOG_HTTP_LISTEN``; ``make run`` serves it at 127.0.0.1:50080), given its endpoint URL, a
region and any access key (one from the catalog's ``--access-keys`` file, if it has one)::

    aws glue --endpoint-url http://127.0.0.1:50080 list-jobs
    boto3.client("glue", endpoint_url="http://127.0.0.1:50080", region_name="us-east-1")
    export AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:50080  # botocore honours it

Credentials: a catalog with ``--access-keys`` wants an access key with every call. gluectl
finds it as the aws CLI does (``--profile``, else ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, else ``~/.aws/credentials``; see ``clients.credentials``), and talks
TLS with ``--tls`` or ``--tls-ca FILE``::

    AWS_PROFILE=team-a gluectl --endpoint glue.internal:50051 --tls-ca ca.pem jobs list

Expected failures never print a traceback. Besides ``clients.credentials`` (the AWS_*
variables), this is the only gluectl module that reads the environment (``GLUECTL_ENDPOINT``
and ``GLUECTL_TLS_CA``, the defaults for ``--endpoint`` and ``--tls-ca``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

import argcomplete

from clients.glue_client import WaitTimeoutError
from clients.gluectl.command_kit import ExitCode, UsageError
from clients.gluectl.commands import DEFAULT_ENDPOINT, build_parser, run
from clients.gluectl.output import Output
from servicekit.errors import GlueError, ServiceUnavailableException

# What a shell reports for a command ended by Ctrl-C (128 + SIGINT).
_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run gluectl with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser(
        default_endpoint=os.environ.get("GLUECTL_ENDPOINT") or DEFAULT_ENDPOINT,
        default_tls_ca=os.environ.get("GLUECTL_TLS_CA") or None,
    )
    # Answers the shell's completion request and exits, when the shell asks; otherwise does
    # nothing. Users turn it on with `eval "$(register-python-argcomplete gluectl)"`.
    argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help (0) and on usage errors (2, message already printed).
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    out = Output(fmt=args.output, stdout=sys.stdout, stderr=sys.stderr)
    try:
        return int(asyncio.run(run(args, out)))
    except UsageError as exc:
        args.parser.print_usage(sys.stderr)
        out.note(f"{args.parser.prog}: error: {exc}")
        return ExitCode.USAGE
    except ServiceUnavailableException as exc:
        out.error(exc.message)
        return ExitCode.UNREACHABLE
    except GlueError as exc:
        out.error(f"{exc.reason}: {exc.message}")
        return ExitCode.FAILED
    except WaitTimeoutError as exc:
        out.error(str(exc))
        return ExitCode.FAILED
    except BrokenPipeError:
        # The reader went away (`gluectl logs ... | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        return _INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
