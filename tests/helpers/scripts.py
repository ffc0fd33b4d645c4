"""Tiny job scripts the tests run as real processes."""

from __future__ import annotations

import textwrap
from pathlib import Path

ECHO_ARGS = """
import json, sys
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["JOB_NAME"])
print("hello from", args["JOB_NAME"])
with open(sys.argv[0] + ".out", "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "run_id": args["JOB_RUN_ID"]}) + "\\n")
"""

SUCCEED = "print('ok')\n"

FAIL = """
import sys
print("about to fail")
print("Traceback: something went wrong", file=sys.stderr)
print("ValueError: bad input row 42", file=sys.stderr)
sys.exit(3)
"""

SLEEP = """
import sys, time
print("sleeping", flush=True)
time.sleep(float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60)
print("woke", flush=True)
"""

IGNORE_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring TERM", flush=True)
time.sleep(600)
"""


def write_script(directory: Path, name: str, body: str) -> Path:
    """Write a job script; returns its absolute path."""
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path.resolve()
