"""A scheduler database driven directly, without services: its run stores, registered jobs and
admissions, as the tests of run ends, fire batches and the catalog's event consumer set them up.

The database is the test's own (``database_urls``' scheduler URL), already migrated.
"""

from __future__ import annotations

from pathlib import Path

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import registry
from scheduler_service.leases import Replica
from scheduler_service.outbox import EventFeed
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.runs import RunStore
from servicekit.db import Database


def run_store(db: Database, runs_dir: Path, replica_id: str, site: str | None = None) -> RunStore:
    """A replica's run store on ``db``, with an event feed of its own."""
    return RunStore(db, EventFeed(db), runs_dir, replica=Replica(replica_id=replica_id, site=site))


async def add_job(
    db: Database,
    name: str,
    *,
    version: int = 1,
    max_concurrent_runs: int = 100,
    **fields: object,
) -> None:
    """Register a pythonshell job running /bin/true (its incarnation is its name)."""
    job = glue_pb2.Job(
        name=name,
        role="arn:aws:iam::123456789012:role/test",
        command=glue_pb2.JobCommand(name="pythonshell", script_location="/bin/true"),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=max_concurrent_runs),
        **fields,  # type: ignore[arg-type]
    )
    async with db.transaction() as conn:
        await registry.upsert_job(
            conn, scheduler_pb2.JobRegistration(job=job, version=version, incarnation=name)
        )


async def admit(store: RunStore, job: str, run_id: str, *, slot: bool) -> Admitted:
    """Admit one run of ``job`` as StartRun does, into a process slot or not."""
    [admitted] = await store.admit_many(
        [
            Admission(
                registration=scheduler_pb2.JobRegistration(),
                run_id=run_id,
                request={"JobName": job},
                process_slot_reserved=slot,
            )
        ]
    )
    assert isinstance(admitted, Admitted), admitted
    return admitted
