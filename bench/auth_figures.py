"""The cost of authentication and authorization on the gRPC door: GetJobRun/s of one finished
run with the catalog open (no access keys), with a bearer key that has no policy, and with a
key whose IAM policy has to be evaluated (three statements, the matching one last).

One stack (scheduler + catalog subprocesses, one database); the catalog is restarted between
modes on the same database, so every mode reads the same run. A fourth mode sends the key's
header to the open catalog, which ignores it: the difference between it and the keyed modes
is what checking costs, apart from carrying one more header (the load generator shares the
cores, so its own cost of sending the header is in every keyed figure). The modes take turns for
``rounds`` rounds and each mode's figure is its median, so drift on a shared machine touches
all of them alike. Target: each keyed mode at most 10% slower than the open catalog.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import grpc

from bench.glue_figures import BenchConfig, Stack, running_stack
from bench.load import Figure, closed_loop
from bench.procs import wait_serving
from clients.credentials import Credentials
from glue.v1 import glue_pb2, glue_pb2_grpc

ADMIN = Credentials("AKIDBENCHADMIN", "bench-admin-secret")
TEAM = Credentials("AKIDBENCHTEAM", "bench-team-secret")
JOB = "bench-team-job"
MODES = ("open", "open, key header sent", "bearer key", "bearer key + policy")
TARGET_SLOWDOWN = 0.10


def _write_keys(path: Path) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": "glue:Delete*", "Resource": "*"},
            {"Effect": "Allow", "Action": "glue:List*", "Resource": "*"},
            {"Effect": "Allow", "Action": "glue:*", "Resource": "arn:aws:glue:*:*:job/bench-*"},
        ],
    }
    keys = [
        {"access_key_id": ADMIN.access_key_id, "secret_access_key": ADMIN.secret_access_key,
         "identity": "bench-admin"},
        {"access_key_id": TEAM.access_key_id, "secret_access_key": TEAM.secret_access_key,
         "identity": "bench-team", "policy": policy},
    ]  # fmt: skip
    path.write_text(json.dumps({"keys": keys}))
    path.chmod(0o600)  # the catalog refuses a keys file others may read


async def _restart_catalog(stack: Stack, keys: Path | None) -> None:
    args = list(stack.catalog.args)
    if "--access-keys" in args:
        index = args.index("--access-keys")
        del args[index : index + 2]
    if keys is not None:
        args += ["--access-keys", str(keys)]
    await stack.catalog.stop()
    stack.catalog.args = args
    await stack.catalog.start()
    await wait_serving(stack.address, stack.catalog)


async def _get_job_run_rate(
    stack: Stack, config: BenchConfig, mode: str, run_id: str, credentials: Credentials | None
) -> Figure:
    # The key goes as per-call metadata (no client interceptor), so the figures compare the
    # server's work; the load generator shares the cores.
    metadata = None if credentials is None else credentials.metadata
    async with grpc.aio.insecure_channel(stack.address) as channel:
        stub = glue_pb2_grpc.GlueStub(channel)
        request = glue_pb2.GetJobRunRequest(job_name=JOB, run_id=run_id)

        async def call(_i: int) -> object:
            return await stub.GetJobRun(request, timeout=30.0, metadata=metadata)

        figure = Figure(stack.backend, f"auth_{mode}", f"GetJobRun/s, {mode}", "calls")
        return await closed_loop(
            figure,
            call,
            concurrency=config.concurrency,
            duration=config.duration,
            warmup=config.warmup,
            meter=stack.meter(),
        )


async def measure(
    root: Path,
    config: BenchConfig,
    backend: str,
    progress: Callable[[str], None],
    rounds: int = 3,
) -> tuple[list[str], list[str]]:
    """Measure; returns the report's lines and its target lines."""
    keys = root / "keys.json"
    async with running_stack(backend, root, replace(config, channels=1)) as stack:
        _write_keys(keys)
        await stack.create_job(JOB, stack.scripts / "trivial.py", 1)
        run_id = await stack.start_run(JOB)
        await stack.wait_state(JOB, run_id, {"SUCCEEDED"})
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_number in range(rounds):
            for mode, key_file, credentials in (
                (MODES[0], None, None),
                (MODES[1], None, ADMIN),
                (MODES[2], keys, ADMIN),
                (MODES[3], keys, TEAM),
            ):
                progress(f"auth figures: round {round_number + 1}/{rounds}, {mode}")
                await _restart_catalog(stack, key_file)
                figure = await _get_job_run_rate(stack, config, mode, run_id, credentials)
                rates[mode].append(figure.rate)
    medians = {mode: statistics.median(values) for mode, values in rates.items()}
    lines = [
        f"{mode:<22} {medians[mode]:8.0f}/s  (rounds: "
        + ", ".join(f"{v:.0f}" for v in rates[mode])
        + ")"
        for mode in MODES
    ]
    targets = []
    for mode in MODES[2:]:
        slowdown = 1 - medians[mode] / medians[MODES[0]]
        met = "met" if slowdown <= TARGET_SLOWDOWN else "NOT met"
        header_only = 1 - medians[mode] / medians[MODES[1]]
        targets.append(
            f"GetJobRun with {mode}: {slowdown:+.1%} slower than open "
            f"(target at most {TARGET_SLOWDOWN:.0%}): {met}; {header_only:+.1%} against open "
            "with the same header sent (the cost of checking it, without the header's own)"
        )
    return lines, targets
