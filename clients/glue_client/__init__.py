"""GlueClient: an async client for the public glue.v1.Glue API.

One method per Glue operation, named in snake_case (``CreateJob`` -> ``create_job``), taking and
returning glue.v1 messages; requests may also be given in Glue's JSON form (PascalCase member
names, as boto3 takes them), which ``glue_vocabulary.shapes`` converts::

    async with GlueClient("127.0.0.1:50051") as glue:
        await glue.create_job(
            Name="nightly",
            Role="arn:aws:iam::123456789012:role/etl",
            Command={"Name": "pythonshell", "ScriptLocation": "/srv/jobs/nightly.py"},
        )
        run_id = (await glue.start_job_run("nightly", Arguments={"--day": "mon"})).job_run_id
        run = await glue.wait_job_run("nightly", run_id)
        async for chunk in glue.get_job_run_log("nightly", run_id):
            sys.stdout.buffer.write(chunk)
        await glue.create_trigger(
            Name="nightly-2am",
            Type="SCHEDULED",
            Schedule="cron(0 2 * * ? *)",
            Actions=[{"JobName": "nightly"}],
            StartOnCreation=True,
        )
        await glue.tag_resource(resource_arn("job", "nightly"), {"team": "data"})

Errors are raised as the ``servicekit.errors.GlueError`` subclass the service named (through
``from_rpc_error``, the one translation point). Only UNAVAILABLE is retried, and only on calls
that change nothing (the Get/List/BatchGet operations, GetJobBookmark, GetTags, GetTriggerFires
and the log stream), so a retried call can never start a second run, fire a trigger twice or
apply an update twice.

The operations are grouped by aggregate (``jobs``, ``job_runs``, ``job_bookmarks``,
``triggers``, ``tags``) over ``channel`` (the channel, retries, error translation) and
``requests`` (building requests, following pages); this package re-exports the public names.
"""

from __future__ import annotations

from clients.glue_client.channel import DEFAULT_TIMEOUT
from clients.glue_client.job_bookmarks import JobBookmarkOperations
from clients.glue_client.job_runs import TERMINAL_STATES, JobRunOperations, WaitTimeoutError
from clients.glue_client.jobs import JobOperations, job_update_from_job
from clients.glue_client.requests import build_request, check_members
from clients.glue_client.tags import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    TAGGABLE_KINDS,
    TagOperations,
    resource_arn,
)
from clients.glue_client.triggers import TriggerOperations

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "DEFAULT_TIMEOUT",
    "TAGGABLE_KINDS",
    "TERMINAL_STATES",
    "GlueClient",
    "WaitTimeoutError",
    "build_request",
    "check_members",
    "job_update_from_job",
    "resource_arn",
]


class GlueClient(
    JobRunOperations, JobOperations, JobBookmarkOperations, TriggerOperations, TagOperations
):
    """An async client for glue.v1.Glue; owns its channel (use it as an async context manager).

    Args:
        address: ``host:port`` of the catalog service.
        timeout: seconds each unary call may take (None: no deadline). Log streams that follow
            a run have no deadline, since a run may take hours.
        retry_delays: seconds to wait before each retry of a read-only call that failed with
            UNAVAILABLE; empty to never retry.
        credentials: the access key sent with every call (``clients.credentials``), needed
            when the catalog has ``--access-keys``.
        tls: TLS channel credentials (``clients.credentials.channel_credentials``) for a
            catalog serving TLS; None: plain text.
    """
