"""Job registrations stored in batches (``registry.upsert_jobs``, behind AddJobs): one row per
name at its highest version, an older or equal version never replacing a newer one, and an
answer per registration. On a real database, both backends."""

from __future__ import annotations

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import registry
from servicekit.db import Database


def registration(name: str, version: int, role: str = "r") -> scheduler_pb2.JobRegistration:
    job = glue_pb2.Job(
        name=name,
        role=f"arn:aws:iam::123456789012:role/{role}",
        command=glue_pb2.JobCommand(name="pythonshell", script_location="/bin/true"),
    )
    return scheduler_pb2.JobRegistration(job=job, version=version, incarnation=f"{name}-{version}")


async def stored(db: Database, *names: str) -> dict[str, tuple[int, str]]:
    async with db.read() as conn:
        jobs = await registry.get_jobs(conn, list(names))
    return {job.name: (job.version, job.definition["Role"]) for job in jobs.values()}


async def test_a_batch_keeps_each_names_newest_version_and_answers_each_registration(
    scheduler_db: Database,
) -> None:
    async with scheduler_db.transaction() as conn:
        assert await registry.upsert_jobs(conn, [registration("held", 5, "five")]) == [True]
    batch = [
        registration("new", 1, "one"),
        registration("new", 3, "three"),  # the same name twice: the higher version is kept
        registration("held", 4, "four"),  # older than what is held: not stored
        registration("held", 6, "six"),
        registration("other", 2),
    ]
    async with scheduler_db.transaction() as conn:
        answers = await registry.upsert_jobs(conn, batch)
    assert answers == [False, True, False, True, True]
    assert await stored(scheduler_db, "new", "held", "other") == {
        "new": (3, "arn:aws:iam::123456789012:role/three"),
        "held": (6, "arn:aws:iam::123456789012:role/six"),
        "other": (2, "arn:aws:iam::123456789012:role/r"),
    }
    # The same version again changes nothing and says so.
    async with scheduler_db.transaction() as conn:
        assert await registry.upsert_jobs(conn, [registration("held", 6, "again")]) == [False]
    assert (await stored(scheduler_db, "held"))["held"][1].endswith("/six")


async def test_a_batch_larger_than_one_statement_answers_every_row(
    scheduler_db: Database,
) -> None:
    # More rows than SQLAlchemy puts in one INSERT (insertmanyvalues pages of 1,000 on
    # PostgreSQL, fewer on SQLite by its parameter limit): every row's answer must come back.
    names = [f"job-{k:05d}" for k in range(2_500)]
    async with scheduler_db.transaction() as conn:
        await registry.upsert_jobs(conn, [registration(n, 2) for n in names[::2]])
    batch = [registration(n, 1 if k % 4 == 0 else 3) for k, n in enumerate(names)]
    async with scheduler_db.transaction() as conn:
        answers = await registry.upsert_jobs(conn, batch)
    # Held at version 2: every 4th name (version 1) is refused, every other even one (3) is
    # stored; odd names are new, so stored at whatever version they came with.
    assert answers == [k % 4 != 0 for k in range(len(names))]
    assert len(await stored(scheduler_db, *names)) == len(names)
