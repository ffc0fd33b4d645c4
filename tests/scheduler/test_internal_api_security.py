"""The scheduler's internal API: only the catalog may call it, and what it is sent is checked.

Each test here is a finding of the review "Security of the front doors" and failed on the code
before the fix: a registration from outside that shadowed the catalog's job, a run id that
stopped the scheduler from starting again, arguments too large for any run event.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from servicekit.errors import error_reason
from tests.conftest import Stack
from tests.helpers.internal import (
    scheduler_stub,
    secret_call,
    start_secured_stack,
    write_secret,
)
from tests.helpers.processes import free_port, service_environment, wait_healthy
from tests.helpers.scripts import write_script

# Writes which script ran (its own path) next to the job's output file.
WHO_RAN = """
import sys
with open({out!r}, "a") as out:
    out.write({tag!r} + "\\n")
"""


@pytest.fixture
async def secured(database_urls: tuple[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    """Both services sharing an internal secret; the secret is the stack's ``secret``."""
    stack, secret = await start_secured_stack(database_urls, tmp_path)
    stack.secret = secret  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        await stack.close()


def _job(name: str, script: Path) -> glue_pb2.Job:
    return glue_pb2.Job(
        name=name,
        role="r",
        command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
    )


def _reason(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str | None]:
    return exc.code(), error_reason(exc)


async def test_calls_without_the_secret_are_refused(secured: Stack, tmp_path: Path) -> None:
    evil = write_script(tmp_path, "evil.py", "print('evil')\n")
    registration = scheduler_pb2.JobRegistration(job=_job("payroll", evil), version=10**9)
    async with scheduler_stub(secured) as scheduler:
        for metadata, reason in (
            ((), "MissingAuthenticationTokenException"),
            (secret_call("not-the-secret"), "UnrecognizedClientException"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await scheduler.AddJob(
                    scheduler_pb2.AddJobRequest(registration=registration), metadata=metadata
                )
            assert _reason(refused.value) == (grpc.StatusCode.UNAUTHENTICATED, reason)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await scheduler.ListRegistrations(
                    scheduler_pb2.ListRegistrationsRequest(), metadata=metadata
                )
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stream = scheduler.WatchRunEvents(
                scheduler_pb2.WatchRunEventsRequest(), metadata=metadata
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await anext(aiter(stream))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        held = await scheduler.ListRegistrations(
            scheduler_pb2.ListRegistrationsRequest(),
            metadata=secret_call(secured.secret),  # type: ignore[attr-defined]
        )
        assert [j.name for j in held.jobs] == []
    # The catalog sends the secret on every call, the event stream included: a run it starts
    # reaches SUCCEEDED in its history.
    good = write_script(tmp_path, "good.py", "print('ok')\n")
    await secured.create_job("payroll", good)
    run_id = await secured.start_run("payroll")
    assert (await secured.wait_run("payroll", run_id)).job_run_state == "SUCCEEDED"


async def test_a_registration_from_outside_cannot_shadow_the_catalogs_job(
    stack: Stack, tmp_path: Path
) -> None:
    """Without a secret (loopback development), a registration under a version the catalog
    never gave out is replaced by the catalog's reconciler; a version beyond any the catalog
    could reach is refused outright."""
    out = tmp_path / "who.out"
    real = write_script(tmp_path, "real.py", WHO_RAN.format(out=str(out), tag="real"))
    evil = write_script(tmp_path, "evil.py", WHO_RAN.format(out=str(out), tag="evil"))
    await stack.create_job("payroll", real)
    async with scheduler_stub(stack) as scheduler:
        for _ in range(100):
            held = await scheduler.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
            if held.jobs:
                break
            await asyncio.sleep(0.05)
        (job,) = held.jobs
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.AddJob(
                scheduler_pb2.AddJobRequest(
                    registration=scheduler_pb2.JobRegistration(
                        job=_job("payroll", evil), version=2**62
                    )
                )
            )
        assert _reason(refused.value) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidInputException",
        )
        assert "registration.version" in (refused.value.details() or "")
        applied = await scheduler.AddJob(
            scheduler_pb2.AddJobRequest(
                registration=scheduler_pb2.JobRegistration(
                    job=_job("payroll", evil), version=job.version + 1000
                )
            )
        )
        assert applied.applied
        # The reconciler (every second here) sees a version it never gave out and puts the
        # catalog's job back under a version beyond it.
        for _ in range(200):
            held = await scheduler.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
            if held.jobs[0].version > job.version + 1000:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the shadowing registration was never replaced")
    run_id = await stack.start_run("payroll")
    assert (await stack.wait_run("payroll", run_id)).job_run_state == "SUCCEEDED"
    assert out.read_text().split() == ["real"]


@pytest.mark.parametrize(
    "run_id", ["../../x", "jr_../../x", "jr_ABC", "jr_", "jr_0a/b", "x" * 300, "jr_0a\n"]
)
async def test_a_run_id_the_catalog_would_not_make_is_refused(
    stack: Stack, tmp_path: Path, run_id: str
) -> None:
    """Such a run used to be stored, and then the scheduler refused to start again."""
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("paths", script)
    async with scheduler_stub(stack) as scheduler:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.StartRun(
                scheduler_pb2.StartRunRequest(
                    run_id=run_id, request=glue_pb2.StartJobRunRequest(job_name="paths")
                )
            )
    assert _reason(refused.value) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidInputException")
    assert "run_id" in (refused.value.details() or "")
    await stack.stop_scheduler()
    await stack.start_scheduler()
    run = await stack.start_run("paths")
    assert (await stack.wait_run("paths", run)).job_run_state == "SUCCEEDED"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            scheduler_pb2.AddJobRequest(
                registration=scheduler_pb2.JobRegistration(job=glue_pb2.Job(name="a\nb"), version=1)
            ),
            "registration.job.name",
        ),
        (
            scheduler_pb2.AddJobRequest(
                registration=scheduler_pb2.JobRegistration(
                    job=glue_pb2.Job(name="n" * 256), version=1
                )
            ),
            "registration.job.name",
        ),
        (
            scheduler_pb2.AddJobRequest(
                registration=scheduler_pb2.JobRegistration(job=glue_pb2.Job(name="ok"), version=0)
            ),
            "registration.version",
        ),
        (
            scheduler_pb2.AddJobRequest(
                registration=scheduler_pb2.JobRegistration(
                    job=glue_pb2.Job(
                        name="ok",
                        command=glue_pb2.JobCommand(script_location="s" * 400_001),
                    ),
                    version=1,
                )
            ),
            "registration.job.command.script_location",
        ),
        (
            scheduler_pb2.AddTriggerRequest(
                registration=scheduler_pb2.TriggerRegistration(
                    trigger=glue_pb2.Trigger(
                        name="t", actions=[glue_pb2.Action(job_name="bad\x00name")]
                    ),
                    version=1,
                )
            ),
            "registration.trigger.actions[0].job_name",
        ),
        (scheduler_pb2.DeleteJobRequest(job_name="", version=3), "job_name"),
        (scheduler_pb2.StopRunRequest(job_name="j", run_id="../x"), "run_id"),
        (scheduler_pb2.ReadRunLogRequest(run_id="/etc/passwd"), "run_id"),
        (scheduler_pb2.ReadRunLogRequest(run_id="jr_x", stream="both"), "stream"),
        (scheduler_pb2.ReadRunLogRequest(run_id="jr_x", events=True, limit=-1), "limit"),
    ],
)
async def test_requests_are_checked_as_strictly_as_the_catalog_does(
    stack: Stack, request_: object, field: str
) -> None:
    method = type(request_).__name__.removesuffix("Request")

    async def call(scheduler: scheduler_pb2_grpc.SchedulerStub) -> object:
        answer = getattr(scheduler, method)(request_)
        return await anext(aiter(answer)) if method == "ReadRunLog" else await answer

    async with scheduler_stub(stack) as scheduler:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(scheduler)
    assert _reason(refused.value) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidInputException")
    assert field in (refused.value.details() or "")


async def test_arguments_too_large_for_a_run_event_are_refused(
    stack: Stack, tmp_path: Path
) -> None:
    """9 MiB of default arguments and 9 MiB of run arguments: the run's record (and each of
    its events) would be 18 MiB, more than a gRPC message; the catalog then received no run
    event at all, for anyone."""
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("small", script)
    big = {"--blob": "x" * (9 * 1024 * 1024)}
    job = _job("huge", script)
    job.default_arguments.update(big)
    async with scheduler_stub(stack) as scheduler:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.AddJob(
                scheduler_pb2.AddJobRequest(
                    registration=scheduler_pb2.JobRegistration(job=job, version=10**6)
                )
            )
        assert _reason(refused.value) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidInputException",
        )
        assert "registration.job.default_arguments" in (refused.value.details() or "")
        await stack.create_job("huge", script)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.StartRun(
                scheduler_pb2.StartRunRequest(
                    run_id="jr_" + "ab" * 32,
                    request=glue_pb2.StartJobRunRequest(job_name="huge", arguments=big),
                )
            )
        assert "request.arguments" in (refused.value.details() or "")
    run_id = await stack.start_run("small")
    assert (await stack.wait_run("small", run_id)).job_run_state == "SUCCEEDED"


# -- start-up --------------------------------------------------------------------------------


async def _run_scheduler(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m scheduler_service ARGS`` until it exits (at most 20 s); (status,
    stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scheduler_service",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**service_environment(), **(env or {})},
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        (0o644, None, "chmod 600"),
        (0o640, None, "chmod 600"),
        (0o600, "\n", "is empty"),
    ],
)
async def test_a_secret_file_others_can_read_or_an_empty_one_is_refused(
    tmp_path: Path, mode: int, text: str | None, expected: str
) -> None:
    secret = write_secret(tmp_path / "secret", mode, text)
    status, stderr = await _run_scheduler(
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--data-dir",
        str(tmp_path / "data"),
        env={"SCHEDULER_INTERNAL_SECRET": str(secret)},
    )
    assert status == 1
    assert str(secret) in stderr
    assert expected in stderr
    assert "Traceback" not in stderr


async def test_an_open_address_needs_a_secret_or_insecure(tmp_path: Path) -> None:
    port = free_port()
    base = ["--listen", f"0.0.0.0:{port}", "--data-dir", str(tmp_path / "data")]
    status, stderr = await _run_scheduler(*base)
    assert status == 1
    assert "--internal-secret" in stderr
    assert "--insecure" in stderr
    for extra in (["--insecure"], ["--internal-secret", str(write_secret(tmp_path / "s"))]):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scheduler_service",
            *base,
            *extra,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=service_environment(),
        )
        try:
            await wait_healthy(f"127.0.0.1:{port}", timeout=20)
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)
