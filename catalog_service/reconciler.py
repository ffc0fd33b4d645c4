"""Makes the scheduler's registrations equal the catalog's, on start-up and periodically.

Catalog writes and scheduler calls are not one transaction: a push can fail (scheduler down,
crash between commit and call). The catalog's tables say what the scheduler should hold; this
loop compares that with ``ListRegistrations`` and pushes the difference. Registrations carry
versions, so repeating a push is harmless and an old one never overwrites a newer one.
"""

from __future__ import annotations

import asyncio
import logging

from catalog_service.jobs import JobCatalog
from catalog_service.registration_versions import next_version
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.triggers import TriggerCatalog
from servicekit.db import Database
from servicekit.errors import GlueError
from servicekit.waiting import woken

log = logging.getLogger(__name__)


class Reconciler:
    """Pushes missing, stale and extra registrations to the scheduler."""

    def __init__(
        self,
        db: Database,
        link: SchedulerLink,
        job_catalog: JobCatalog,
        trigger_catalog: TriggerCatalog,
        *,
        interval: float,
    ) -> None:
        self._db = db
        self._link = link
        self._jobs = job_catalog
        self._triggers = trigger_catalog
        self._interval = interval
        self._wake = asyncio.Event()
        self.passes = 0
        self.repaired = 0
        """Registrations pushed because the scheduler's differed (metrics)."""
        self.failures = 0

    def wake(self) -> None:
        """Reconcile now (e.g. the scheduler just came back)."""
        self._wake.set()

    async def run(self) -> None:
        """Reconcile at start, then every ``interval`` seconds or when woken."""
        while True:
            try:
                changed = await self.reconcile_once()
                if changed:
                    log.info("reconciled scheduler registrations", extra={"pushed": changed})
            except GlueError as exc:
                self.failures += 1
                log.warning("reconcile failed; will retry", extra={"error": exc.message})
            except Exception:
                self.failures += 1
                log.exception("reconcile failed; will retry")
            self._wake.clear()
            await woken(self._wake, self._interval)

    async def reconcile_once(self) -> int:
        """One pass; returns how many registrations were pushed."""
        held = await self._link.list_registrations()
        held_jobs = {r.name: r for r in held.jobs}
        desired = await self._jobs.all_registrations()
        pushed = 0
        for registration in desired:
            current = held_jobs.get(registration.job.name)
            if current is not None and current.version > registration.version:
                # The catalog is the only registrar and its counter only grows, so the
                # scheduler holds something the catalog never gave it (a caller without the
                # internal secret, a restored backup): jump past it, so the catalog's wins.
                log.warning(
                    "the scheduler holds a job version the catalog never gave out; "
                    "re-registering the catalog's",
                    extra={
                        "job": registration.job.name,
                        "held": current.version,
                        "catalog": registration.version,
                    },
                )
                renewed = await self._jobs.renew_version(registration, current.version)
                if renewed is None:
                    continue  # changed meanwhile; that change pushes itself
                registration = renewed
            stale = current is None or current.version < registration.version
            if stale and await self._link.add_job(registration):
                pushed += 1
        desired_names = {r.job.name for r in desired}
        extra = [r for r in held.jobs if not r.deleted and r.name not in desired_names]
        for held_job in extra:
            async with self._db.transaction() as conn:
                version = await next_version(conn)
            if await self._link.delete_job(held_job.name, version):
                pushed += 1
        pushed += await self._triggers.reconcile(list(held.triggers))
        self.passes += 1
        self.repaired += pushed
        return pushed
