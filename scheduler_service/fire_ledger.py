"""The fire ledger's rows: how a fire (or a due time that did not fire) is recorded, and read.

Each row is keyed by (trigger, fire key); a second attempt at the same fire fails on that key
(docs/invariants.md §4). The ledger's only writer is ``firing.Firing``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from glue.v1 import glue_pb2


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def fire_to_proto(row: Any) -> glue_pb2.TriggerFire:
    """A ledger row as a glue.v1.TriggerFire."""
    fire = glue_pb2.TriggerFire(
        trigger_name=row.trigger_name,
        outcome=row.outcome,
        reason=row.reason,
        run_ids=json.loads(row.run_ids),
        due_times=row.due_times,
    )
    fire.scheduled_at.FromDatetime(_dt(row.scheduled_at))
    fire.recorded_at.FromDatetime(_dt(row.recorded_at))
    return fire


# The columns of ``_ledger_row``, in its order.
_LEDGER_COLUMNS = (
    "trigger_name",
    "fire_key",
    "scheduled_at",
    "recorded_at",
    "outcome",
    "reason",
    "run_ids",
    "due_times",
)


def _ledger_row(
    trigger_name: str,
    fire_key: str,
    *,
    scheduled_at: float,
    outcome: str,
    reason: str,
    run_ids_json: str = "[]",
    due_times: int = 1,
) -> tuple[Any, ...]:
    """One ``trigger_fires`` row, recorded now (values in _LEDGER_COLUMNS order)."""
    return (
        trigger_name,
        fire_key,
        scheduled_at,
        time.time(),
        outcome,
        reason,
        run_ids_json,
        due_times,
    )
