"""TriggerCatalog's reconciliation with the scheduler: pushing what it lacks, finishing
deletes, settling pending states (the reconciler calls ``reconcile``; the writes settle too).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select, update

from catalog_service.registration_versions import next_version, version_after
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import triggers
from catalog_service.trigger_reads import TriggerReads
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from servicekit.errors import GlueError, ServiceUnavailableException

log = logging.getLogger(__name__)


def _registration(row_definition: bytes, version: int) -> scheduler_pb2.TriggerRegistration:
    return scheduler_pb2.TriggerRegistration(
        trigger=glue_pb2.Trigger.FromString(row_definition), version=version
    )


class TriggerReconciliation(TriggerReads):
    """TriggerCatalog's reconciliation; its __init__ sets the state declared here."""

    _link: SchedulerLink

    async def _settle(self, name: str, version: int) -> None:
        """Clear the pending state once the scheduler holds ``version``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(triggers)
                .where(triggers.c.name == name)
                .where(triggers.c.version == version)
                .values(pending=None)
            )

    async def reconcile(self, held: list[scheduler_pb2.RegistrationVersion]) -> int:
        """Make the scheduler's trigger registrations equal the catalog's; returns the pushes.

        ``held`` is what ListRegistrations answered *before* this reads the catalog, so every
        registration in it belongs to a row committed before that read. Per row: finish a
        DELETING row (unschedule, then remove it); push a registration the scheduler lacks or
        holds an older version of; then clear the row's pending state. Registrations of
        triggers the catalog does not have are unscheduled and deleted.

        One row the scheduler refuses does not stop the others (it is logged and retried next
        pass); an unreachable scheduler ends the pass.

        Raises:
            ServiceUnavailableException: the scheduler went away during the pass.
        """
        held_by_name = {r.name: r for r in held}
        async with self._db.read() as conn:
            rows = (await conn.execute(select(triggers))).all()
        pushed = 0
        for row in rows:
            try:
                pushed += await self._reconcile_row(row, held_by_name.get(row.name))
            except ServiceUnavailableException:
                raise
            except GlueError as exc:
                log.warning(
                    "could not reconcile a trigger; will retry",
                    extra={"trigger": row.name, "error": exc.message},
                )
        names = {r.name for r in rows}
        for extra in held:
            if extra.deleted or extra.name in names:
                continue
            async with self._db.transaction() as conn:
                # Created since the read above: its own push (or the next pass) covers it.
                if await self._row(conn, extra.name) is not None:
                    continue
                version = await next_version(conn)
            await self._link.unschedule(extra.name, version, delete=True)
            pushed += 1
        return pushed

    async def _reconcile_row(
        self, row: Any, current: scheduler_pb2.RegistrationVersion | None
    ) -> int:
        """Bring one trigger's registration up to date; returns 1 if something was pushed."""
        if row.pending == "DELETING":
            await self._link.unschedule(row.name, row.version, delete=True)
            async with self._db.transaction() as conn:
                await conn.execute(
                    delete(triggers)
                    .where(triggers.c.name == row.name)
                    .where(triggers.c.version == row.version)
                )
            return 1
        version = row.version
        pushed = 0
        if current is not None and current.version > version:
            # The scheduler holds a newer version than the catalog ever gave this row: the
            # clean-up of an "extra" raced a CreateTrigger of the same name (on PostgreSQL a
            # sequence value is taken before the row commits), or the catalog's database was
            # restored from a backup. Re-version the row so that its push wins.
            renewed = await self._renew_version(row, current.version)
            if renewed is None:
                return 0  # changed meanwhile; that change pushes itself
            version = renewed
        if current is None or current.version < version or current.deleted:
            await self._link.add_trigger(_registration(row.definition, version))
            pushed = 1
        if row.pending:
            await self._settle(row.name, version)
        return pushed

    async def _renew_version(self, row: Any, past: int) -> int | None:
        """Give ``row`` a version beyond ``past`` (what the scheduler holds) unless it changed
        since it was read."""
        async with self._db.transaction() as conn:
            version = await version_after(conn, past)
            result = await conn.execute(
                update(triggers)
                .where(triggers.c.name == row.name)
                .where(triggers.c.version == row.version)
                .values(version=version)
            )
        return version if result.rowcount else None
