"""Before a glueetl run goes to a Spark standalone cluster: can any worker hold its executors?

Spark's standalone master never refuses an application whose executors no worker can hold: the
driver waits for executors forever ("Initial job has not accepted any resources"). When the
scheduler knows the master's web UI (``--spark-master-ui``), it reads the master's JSON status
first and ends such a run FAILED with a message naming the mismatch. Without that setting, or
when the page cannot be read, the run is submitted as it is (and waits, as Spark does).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from scheduler_service.commands import Capacity

log = logging.getLogger(__name__)
STATUS_TIMEOUT_SECONDS = 3.0


class ExecutorsDoNotFit(Exception):
    """No live worker of the cluster can hold one of the run's executors."""


def executor_memory_mb(size: Capacity) -> int:
    """An executor's heap in MB, as ``Capacity.executor_memory`` asks for it."""
    return int(size.executor_memory.removesuffix("g")) * 1024


def check_fits(status: dict[str, Any], size: Capacity, master: str) -> None:
    """Raise unless some ALIVE worker in the master's JSON ``status`` can hold one executor.

    Raises:
        ExecutorsDoNotFit: the message names the job's executor size and the largest worker.
    """
    memory = executor_memory_mb(size)
    workers = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
    if any(int(w["cores"]) >= size.cores and int(w["memory"]) >= memory for w in workers):
        return
    largest = (
        "the cluster has no live worker"
        if not workers
        else "its largest workers offer "
        + ", ".join(sorted({f"{w['cores']} cores and {w['memory']} MB" for w in workers}))
    )
    raise ExecutorsDoNotFit(
        f"No worker of the Spark cluster at {master} can hold one of this job's executors "
        f"({size.worker_type}: {size.cores} cores and {memory} MB each; {largest}). Choose a "
        "smaller WorkerType, or set spark.executor.cores / spark.executor.memory with --conf."
    )


async def preflight(ui_url: str, size: Capacity, master: str) -> None:
    """Read the master's status page and check that the run's executors fit.

    Raises:
        ExecutorsDoNotFit: they do not.
    """
    url = ui_url.rstrip("/") + "/json/"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_SECONDS)) as got,
        ):
            got.raise_for_status()
            status: dict[str, Any] = await got.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning(
            "cannot read the Spark master's status; submitting without checking worker sizes",
            extra={"url": url, "error": str(exc)},
        )
        return
    check_fits(status, size, master)
