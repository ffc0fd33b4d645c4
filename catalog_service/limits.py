"""Limits the catalog sets where Glue's model sets none (README "Limits and quotas").

Four kinds, each refused before anything is written:

- input sizes (``check_job``, ``check_arguments``, ``check_merged`` ...): InvalidInputException
  naming the field and the cap;
- counts in one request (actions per trigger): ResourceNumberLimitExceededException;
- what one caller holds open at once (``CallerSlots``: unary calls in flight, GetJobRunLog
  streams): ThrottlingException for calls (transient: botocore retries it with backoff),
  ResourceNumberLimitExceededException for streams (as the issue asks: a held stream is a
  resource, and retrying at once would not free it);
- quotas per identity (``check_quota`` for jobs and triggers, ``RunAdmissions`` for runs
  waiting to start): ResourceNumberLimitExceededException.

The caller is ``identity.caller`` (set by the front door); None is one caller, "anonymous".
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, fields
from typing import Any, Final, TypeVar

from sqlalchemy import Column, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import identity
from catalog_service.tables import job_runs
from catalog_service.validation.violations import member_path
from servicekit.db import Database
from servicekit.errors import (
    GlueError,
    InvalidInputException,
    ResourceNumberLimitExceededException,
    ThrottlingException,
)

T = TypeVar("T")

ANONYMOUS: Final = "anonymous"
# The largest --max-arguments-bytes accepted: a run's arguments travel in StartRun, in every
# RunEvent and in GetJobRuns pages, all under gRPC's 16 MiB message limit; a quarter of it
# keeps room for the rest of the run, so no cap setting can make an event undeliverable.
MAX_ARGUMENTS_CEILING: Final = 4 * 1024 * 1024
# States of a run that is accepted but not yet running (the "waiting runs" quota).
WAITING_STATES: Final = ("WAITING", "STARTING")
# Namespace of the PostgreSQL advisory locks that serialise quota checks (two-int form, so it
# never meets the scheduler's single-bigint leadership locks).
_QUOTA_LOCK_NAMESPACE: Final = 0x51554F54


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The catalog's caps and quotas; each is a ``--flag`` of the same name (README table)."""

    max_string_length: int = 2048
    """Role, LogUri, Command.Name and a trigger's Schedule, in characters (the model: none)."""
    max_argument_key_bytes: int = 1024
    """One argument key (DefaultArguments, NonOverridableArguments, Arguments), UTF-8 bytes."""
    max_argument_value_bytes: int = 65536
    """One argument value, UTF-8 bytes: half Linux's 128 KiB limit on one argv string."""
    max_arguments_bytes: int = 262144
    """One argument map, and a run's arguments once merged, UTF-8 bytes of keys and values."""
    max_actions_per_trigger: int = 50
    """Actions (jobs started) per trigger: Glue's default quota "jobs per trigger"."""
    max_batch_names: int = 1000
    """Names per BatchGetJobs / BatchGetTriggers: one ListJobs page (the model: no limit)."""
    max_page_bytes: int = 4 * 1024 * 1024
    """GetJobs / GetJobRuns / GetTriggers pages end early (with a NextToken) past this size."""
    max_calls_in_flight_per_caller: int = 256
    """Unary calls one caller may have in flight at once (gRPC and HTTP together)."""
    max_log_streams_per_caller: int = 16
    """GetJobRunLog streams one caller may hold open at once."""
    max_log_streams: int = 128
    """GetJobRunLog streams open at once, all callers together."""
    max_jobs_per_identity: int = 10000
    """Jobs one identity may have created (0: no quota)."""
    max_triggers_per_identity: int = 10000
    """Triggers one identity may have created (0: no quota)."""
    max_waiting_runs_per_identity: int = 10000
    """Runs one identity started that are WAITING or STARTING (0: no quota)."""

    def __post_init__(self) -> None:
        quotas = {"max_jobs_per_identity", "max_triggers_per_identity"}
        quotas.add("max_waiting_runs_per_identity")
        for each in fields(self):
            value = getattr(self, each.name)
            low = 0 if each.name in quotas else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{each.name} must be an integer of at least {low}: {value!r}")
        if self.max_arguments_bytes > MAX_ARGUMENTS_CEILING:
            raise ValueError(
                f"max_arguments_bytes must be at most {MAX_ARGUMENTS_CEILING} (4 MiB): a run's "
                "arguments travel in gRPC messages limited to 16 MiB"
            )


# ---------------------------------------------------------------------------------------------
# Input sizes


def _utf8_len(value: str) -> int:
    # Lone surrogates can arrive through JSON escapes; count them as they would be stored.
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def arguments_bytes(arguments: Mapping[str, str]) -> int:
    """The size of an argument map as it travels: UTF-8 bytes of every key and value."""
    return sum(_utf8_len(k) + _utf8_len(v) for k, v in arguments.items())


def merged_arguments(
    defaults: Mapping[str, str], overrides: Mapping[str, str], fixed: Mapping[str, str]
) -> dict[str, str]:
    """Glue's precedence, as the scheduler applies it: defaults, the run's, non-overridable."""
    return {**defaults, **overrides, **fixed}


def _too_long(field: str, limit: int, got: int, unit: str, flag: str) -> InvalidInputException:
    return InvalidInputException(
        f"{field}: must be at most {limit} {unit} long (got {got}; --{flag})", field=field
    )


def check_string(value: object, field: str, limits: Limits) -> None:
    """A string member the model leaves unbounded: at most ``max_string_length`` characters."""
    if isinstance(value, str) and len(value) > limits.max_string_length:
        raise _too_long(
            field, limits.max_string_length, len(value), "characters", "max-string-length"
        )


def check_arguments(arguments: Mapping[str, str] | None, field: str, limits: Limits) -> None:
    """One argument map: each key, each value, and the whole map within its cap."""
    if not arguments:
        return
    total = 0
    for key, value in arguments.items():
        key_bytes, value_bytes = _utf8_len(key), _utf8_len(value)
        if key_bytes > limits.max_argument_key_bytes:
            where = member_path(field, key)
            raise InvalidInputException(
                f"{where}: the key must be at most {limits.max_argument_key_bytes} bytes "
                f"(UTF-8) long (got {key_bytes}; --max-argument-key-bytes)",
                field=where,
            )
        if value_bytes > limits.max_argument_value_bytes:
            raise _too_long(
                member_path(field, key),
                limits.max_argument_value_bytes,
                value_bytes,
                "bytes (UTF-8)",
                "max-argument-value-bytes",
            )
        total += key_bytes + value_bytes
    if total > limits.max_arguments_bytes:
        raise InvalidInputException(
            f"{field}: the arguments must be at most {limits.max_arguments_bytes} bytes (UTF-8) "
            f"of keys and values in all (got {total}; --max-arguments-bytes)",
            field=field,
        )


def check_merged(
    job_name: str,
    defaults: Mapping[str, str],
    overrides: Mapping[str, str],
    fixed: Mapping[str, str],
    field: str,
    limits: Limits,
    *,
    started_by: str = "",
) -> None:
    """The arguments a run of ``job_name`` would get, merged, within ``max_arguments_bytes``.

    ``started_by`` names what would start the run, for the message ("trigger T's action 2").

    They are what the scheduler passes to the process and sends back in every event of the
    run, so the cap keeps every such message far below gRPC's limit.
    """
    size = arguments_bytes(merged_arguments(defaults, overrides, fixed))
    if size > limits.max_arguments_bytes:
        raise InvalidInputException(
            f"{field}: a run of job {job_name}{' started by ' + started_by if started_by else ''} "
            f"would get {size} bytes (UTF-8) of arguments once "
            "merged with the job's DefaultArguments and NonOverridableArguments; at most "
            f"{limits.max_arguments_bytes} are allowed (--max-arguments-bytes)",
            field=field,
        )


def check_job(definition: Mapping[str, Any], job_name: str, prefix: str, limits: Limits) -> None:
    """A job definition (CreateJob, or UpdateJob's JobUpdate with ``prefix`` "JobUpdate.")."""
    check_string(definition.get("Role"), f"{prefix}Role", limits)
    check_string(definition.get("LogUri"), f"{prefix}LogUri", limits)
    command = definition.get("Command")
    if isinstance(command, Mapping):
        check_string(command.get("Name"), f"{prefix}Command.Name", limits)
    defaults = definition.get("DefaultArguments") or {}
    fixed = definition.get("NonOverridableArguments") or {}
    check_arguments(defaults, f"{prefix}DefaultArguments", limits)
    check_arguments(fixed, f"{prefix}NonOverridableArguments", limits)
    # A run with no arguments of its own already gets both maps.
    check_merged(
        job_name,
        defaults,
        {},
        fixed,
        f"{prefix}DefaultArguments",
        limits,
    )


def check_trigger(definition: Mapping[str, Any], prefix: str, limits: Limits) -> None:
    """A trigger definition's members the model leaves unbounded: actions and their arguments.

    Raises:
        ResourceNumberLimitExceededException: more actions than ``max_actions_per_trigger``.
        InvalidInputException: a Schedule or an action's Arguments over its cap.
    """
    check_string(definition.get("Schedule"), f"{prefix}Schedule", limits)
    actions = definition.get("Actions") or []
    if len(actions) > limits.max_actions_per_trigger:
        raise ResourceNumberLimitExceededException(
            f"{prefix}Actions: a trigger may start at most {limits.max_actions_per_trigger} "
            f"jobs (got {len(actions)} actions; --max-actions-per-trigger)"
        )
    for index, action in enumerate(actions):
        if isinstance(action, Mapping):
            check_arguments(action.get("Arguments"), f"{prefix}Actions[{index}].Arguments", limits)


def fit_page(sizes: list[int], limits: Limits) -> int:
    """How many of a page's items (by serialized size) to return: as many as fit in
    ``max_page_bytes``, and always at least one, so paging always moves on.

    A page of 200 runs with 256 KiB of arguments each would be 50 MiB, which no gRPC client
    accepts by default (4 MiB); Glue's paginators follow a NextToken after a short page.
    """
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > limits.max_page_bytes and count:
            return count
    return len(sizes)


def check_batch(names: list[str], field: str, limits: Limits) -> None:
    """The names of one BatchGetJobs / BatchGetTriggers call."""
    if len(names) > limits.max_batch_names:
        raise InvalidInputException(
            f"{field}: must have at most {limits.max_batch_names} names (got {len(names)}; "
            "--max-batch-names)",
            field=field,
        )


# ---------------------------------------------------------------------------------------------
# What one caller holds open


def caller_name() -> str:
    """The caller of the request being served, as the limits count it."""
    return identity.caller_name() or ANONYMOUS


class CallerSlots:
    """How many of something each caller holds (calls in flight, open streams), capped.

    Taking and giving back a slot never awaits, so on the one event loop that serves both front
    doors a check and its increment cannot interleave with another caller's.
    """

    def __init__(
        self,
        what: str,
        per_caller: tuple[int, str],
        total: tuple[int, str] | None,
        error: Callable[[str], GlueError],
    ) -> None:
        """Args:
        what: What a slot is, for messages ("calls in flight").
        per_caller: The cap per caller and the flag that sets it.
        total: The cap over all callers and its flag, or None.
        error: Builds the exception for a refusal from its message.
        """
        self._what = what
        self._per_caller, self._per_caller_flag = per_caller
        self._total = total
        self._error = error
        self._held: dict[str, int] = {}
        self._all = 0

    def held(self, caller: str | None = None) -> int:
        """Slots held by one caller, or by all of them."""
        return self._all if caller is None else self._held.get(caller, 0)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one slot of the current caller for the block; refuse if none is free.

        Raises:
            GlueError: the class ``error`` builds, naming the cap that was reached.
        """
        who = caller_name()
        mine = self._held.get(who, 0)
        if mine >= self._per_caller:
            raise self._error(
                f"{who} already has {mine} {self._what}, the most one caller may have "
                f"(--{self._per_caller_flag} {self._per_caller}); retry when one has finished"
            )
        if self._total is not None and self._all >= self._total[0]:
            raise self._error(
                f"the service already has {self._all} {self._what}, the most it allows "
                f"(--{self._total[1]} {self._total[0]}); retry when one has finished"
            )
        self._held[who] = mine + 1
        self._all += 1
        try:
            yield
        finally:
            left = self._held[who] - 1
            if left:
                self._held[who] = left
            else:
                del self._held[who]
            self._all -= 1

    def guard(self, call: Callable[[T], Awaitable[Any]]) -> Callable[[T], Awaitable[Any]]:
        """``call`` holding a slot while it runs."""

        async def guarded(arg: T) -> Any:
            async with self.hold():
                return await call(arg)

        return guarded

    async def stream(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """``items`` holding a slot from the first item until the stream ends or is dropped.

        A client that goes away cancels the task iterating this; the slot is freed and the
        inner stream closed on the way out.
        """
        async with self.hold(), aclosing(items) as inner:  # type: ignore[type-var]
            async for item in inner:
                yield item


def calls_in_flight(limits: Limits) -> CallerSlots:
    """The cap on unary calls in flight per caller (both front doors)."""
    return CallerSlots(
        "calls in flight",
        (limits.max_calls_in_flight_per_caller, "max-calls-in-flight-per-caller"),
        None,
        ThrottlingException,
    )


def log_streams(limits: Limits) -> CallerSlots:
    """The caps on open GetJobRunLog streams, per caller and in total."""
    return CallerSlots(
        "GetJobRunLog streams open",
        (limits.max_log_streams_per_caller, "max-log-streams-per-caller"),
        (limits.max_log_streams, "max-log-streams"),
        ResourceNumberLimitExceededException,
    )


# ---------------------------------------------------------------------------------------------
# Quotas per identity


def _owned_by(column: Column[Any], who: str | None) -> Any:
    return column.is_(None) if who is None else column == who


async def check_quota(
    conn: AsyncConnection, column: Column[Any], limit: int, noun: str, flag: str
) -> None:
    """Refuse a create that would give the current identity more than ``limit`` ``noun``.

    Call it inside the transaction that inserts, before the insert. SQLite transactions here
    hold the database's write lock (BEGIN IMMEDIATE), so the count is exact; on PostgreSQL a
    transaction-scoped advisory lock per (table, identity) makes concurrent creates of one
    identity take turns, so the count is exact there too (other identities are not held up).

    Raises:
        ResourceNumberLimitExceededException: the identity is at its quota.
    """
    if not limit:
        return
    who = identity.caller_name()
    if conn.dialect.name == "postgresql":
        key = f"{column.table.name}:" + ("-" if who is None else f"={who}")
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
            {"namespace": _QUOTA_LOCK_NAMESPACE, "key": key},
        )
    count = (
        await conn.execute(
            select(func.count()).select_from(column.table).where(_owned_by(column, who))
        )
    ).scalar_one()
    if count >= limit:
        raise ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {count} {noun}, the most one identity may have "
            f"(--{flag} {limit}); delete some first"
        )


class IdentityQuota:
    """A quota of things one identity owns (jobs, runs waiting to start), checked without a
    COUNT while the identity is far from it.

    Per identity it keeps an upper bound of what the identity owns: the exact count last read,
    plus every thing this process added (or may have added) for it since that read began.
    Removals are not subtracted, so the bound only drifts up; when it reaches the quota the
    count is read again and the bound becomes exact. Things being added right now are
    ``pending`` until their write is over, and taking one never awaits after the decision, so
    checks of one identity cannot interleave: within one catalog process no identity ever
    passes its quota (one catalog process owns the catalog's tables).
    """

    def __init__(
        self,
        limit: int,
        count: Callable[[str | None], Awaitable[int]],
        refuse: Callable[[str | None, int], GlueError],
    ) -> None:
        """Args:
        limit: The quota (0: none).
        count: Reads how many the identity owns now.
        refuse: The error for an identity that already owns the given number.
        """
        self._limit = limit
        self._count = count
        self._refuse = refuse
        self._pending: dict[str | None, int] = {}
        # Monotonic per identity: things added (or maybe added) by this process.
        self._added: dict[str | None, int] = {}
        # The last count read, and ``_added`` as it was when that read began.
        self._read: dict[str | None, tuple[int, int]] = {}
        self.reads = 0
        """Counts read (for tests: a check far from the quota reads none)."""

    def note_added(self, who: str | None, number: int = 1) -> None:
        """``number`` things were (or may have been) added for ``who`` by other means than
        ``hold`` - e.g. runs started by triggers, recorded with no identity."""
        if number:
            self._added[who] = self._added.get(who, 0) + number

    def _bound(self, who: str | None) -> int | None:
        read = self._read.get(who)
        if read is None:
            return None
        count, added_before = read
        return count + self._added.get(who, 0) - added_before

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one addition of the current identity for the block (check, then write).

        Whatever the block does, the addition is counted afterwards (a write that failed
        half-way may have committed; counting one too many only brings the next read sooner).

        Raises:
            GlueError: ``refuse``'s error; the identity is at its quota, nothing added.
        """
        if not self._limit:
            yield
            return
        who = identity.caller_name()
        owned = self._bound(who)
        if owned is None or owned + self._pending.get(who, 0) >= self._limit:
            added_before = self._added.get(who, 0)
            self.reads += 1
            self._read[who] = (await self._count(who), added_before)
            owned = self._bound(who)
            assert owned is not None
        # No await from here to the increment: checks of one identity cannot interleave.
        pending = self._pending.get(who, 0)
        if owned + pending >= self._limit:
            raise self._refuse(who, owned + pending)
        self._pending[who] = pending + 1
        try:
            yield
        finally:
            # Synchronous, so a cancelled call cannot leave its addition pending for good.
            left = self._pending[who] - 1
            if left:
                self._pending[who] = left
            else:
                del self._pending[who]
            self._added[who] = self._added.get(who, 0) + 1


class RunAdmissions(IdentityQuota):
    """The quota of runs one identity started that wait to run (WAITING or STARTING).

    A StartJobRun's row is inserted only after the scheduler admitted the run, so the check
    cannot share the insert's transaction: each admission is held from the check until its
    row is committed (``IdentityQuota``). Runs recorded with no identity (a trigger's, a
    retry) are anonymous's: the event consumer notes them (``note_added``).
    """

    def __init__(self, db: Database, limit: int) -> None:
        self._db = db
        super().__init__(limit, self._waiting, self._refusal)

    async def _waiting(self, who: str | None) -> int:
        query = (
            select(func.count())
            .select_from(job_runs)
            .where(_owned_by(job_runs.c.started_by, who))
            .where(job_runs.c.state.in_(WAITING_STATES))
        )
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _refusal(self, who: str | None, waiting: int) -> GlueError:
        return ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {waiting} job runs waiting to start "
            f"(WAITING or STARTING), the most one identity may have "
            f"(--max-waiting-runs-per-identity {self._limit}); retry when some have started"
        )

    def admit(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one admission of the current identity for the block (start, then record).

        Raises:
            ResourceNumberLimitExceededException: the identity is at its quota; nothing started.
        """
        return self.hold()


class JobQuota(IdentityQuota):
    """The quota of jobs one identity created (--max-jobs-per-identity)."""

    def __init__(self, db: Database, limit: int, table: Any, column: Column[Any]) -> None:
        self._db = db
        self._table = table
        self._column = column
        super().__init__(limit, self._owned, self._refusal)

    async def _owned(self, who: str | None) -> int:
        query = select(func.count()).select_from(self._table).where(_owned_by(self._column, who))
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _refusal(self, who: str | None, count: int) -> GlueError:
        return ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {count} jobs, the most one identity may have "
            f"(--max-jobs-per-identity {self._limit}); delete some first"
        )
