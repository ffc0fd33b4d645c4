"""Glue's typing of CSV columns, checked during the write instead of in a pass of its own.

Glue's CSV reader types a column ``long`` when every value is an integer, ``double`` when every
value is a number, and leaves it a ``string`` otherwise (a mixed column is an emulated choice,
see ``_choice``). That needs every value before the first record can be typed; computed
first, it is a whole pass over the input before the pass that writes it, which made a
CSV -> Parquet job read its input twice. Instead:

1. A sample (``SAMPLE_ROWS`` records: the first lines of the first file, read on the driver
   by ``_csvlocal.sample_plain_csv`` when plain, else Spark's first records classified with
   ``classify``) gives each column's likely type. When the input has fewer records than
   that, the sample is the whole input and the types are exact. A column the sample saw a
   non-number in is a string whatever the rest holds.
2. A frame still typed from a sample and written to files (``write_checked``) is written with
   those types into a hidden staging folder, while Spark's Observation computes, in the same
   pass, whether every value fits them. When they do, the staged files move into place and the
   types are settled; when some value does not, the staged files are deleted, the types are
   computed exactly and the frame is written again (two passes, as before, plus the wasted one).
   Columns the written data cannot depend on (``PendingFrame.ignored``: a first ApplyMapping
   drops them, or casts a ``double`` guess to double) are not checked.
3. Anything else that needs the data (``toDF``, ``count``, ``show``, a JDBC sink ...) settles the
   types first with one exact aggregation, as before.

Either way the types are exactly those of the rule above over every value. The check of a value
is cheap when the value is a plain number (``_fast_long``/``_fast_double``: byte comparisons and
Spark's own integer parser) and falls back to ``classify``'s regular expressions otherwise.

(Over 400 lines: the sample, the checks and the staged write are one mechanism, kept together.)
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F  # noqa: N812 - PySpark's usual alias
from pyspark.sql.types import StringType

from awsglue._choice import DOUBLE_RE, LONG_RE, classify
from awsglue._fieldpath import top

if TYPE_CHECKING:
    from awsglue._csvlocal import LocalSample

__all__ = [
    "SAMPLE_ROWS",
    "CsvTyping",
    "PendingFrame",
    "StagedFiles",
    "Step",
    "kind_of",
    "write_checked",
]

log = logging.getLogger("awsglue")
SAMPLE_ROWS = 1000
# Observed metrics normally arrive a few milliseconds after the write; past this, the write is
# checked with an exact aggregation instead (Spark can drop an observation it optimised away).
METRICS_TIMEOUT_S = 60.0
STAGING_PREFIX = "_glue_staging-"
Step = Callable[[DataFrame], DataFrame]


def kind_of(found: set[str]) -> str:
    """A column's type from the set of its values' classes (``classify``).

    Args:
        found: classes seen: long, double, string (nulls are not classified).
    """
    if found == {"long"}:
        return "long"
    if found and found <= {"long", "double"}:
        return "double"
    return "string"


def _starts_like_number(value: Column) -> Column:
    # First byte a digit, '+' or '-', by byte-wise comparison (no copy, no decoding): a string
    # starting with '5' sorts between "0" and ":" (the byte after '9').
    return (
        ((value >= "0") & (value < ":"))
        | ((value >= "-") & (value < "."))
        | ((value >= "+") & (value < ","))
    )


def _ends_with_digit(value: Column) -> Column:
    ends = value.endswith("0")
    for digit in "123456789":
        ends = ends | value.endswith(digit)
    return ends


def _fast_long(value: Column) -> Column:
    """True only for values LONG_RE matches: ``[+-]?<digits>``, at most 18 bytes.

    Spark's string-to-long cast accepts ``[+-]?\\d*(\\.\\d*)?`` after trimming whitespace and
    control characters. With no '.', a first byte that is a digit or sign and a last byte that
    is a digit, nothing was trimmed and every other byte is a digit.
    """
    return (
        _starts_like_number(value)
        & _ends_with_digit(value)
        & (F.octet_length(value) <= 18)
        & ~value.contains(".")
        & value.cast("long").isNotNull()
    )


def _fast_double(value: Column) -> Column:
    """True only for values DOUBLE_RE matches: ``[+-]?\\d+``, ``[+-]?\\d*\\.\\d+``.

    As ``_fast_long``, without the length limit and with the cast's one '.' allowed (the cast
    checks that only digits follow it); a last byte that is a digit rules out ``5.`` and ``.``.
    """
    return _starts_like_number(value) & _ends_with_digit(value) & value.cast("long").isNotNull()


def _canonical_excess(value: Column) -> Column:
    """How many bytes ``value`` has beyond the canonical decimal of the long it casts to
    (``-?[1-9]\\d*`` or ``0``): 0 only for a canonical integer of at most 18 digits.

    A value the cast accepts holds at least the digits and sign of its long (but ".", counted
    apart), so the excess is never negative, and a sum of 0 over a column means every value is
    such an integer, which LONG_RE matches. A value the cast refuses, or of 19 digits, counts
    positive. Only byte lengths and integer comparisons: far cheaper than a regex per value.
    """
    number = value.cast("long")
    magnitude = F.abs(number)
    digits = F.when(magnitude < 10, 1)
    for width in range(2, 19):
        digits = digits.when(magnitude < 10**width, width)
    # 19 digits (or abs() of the smallest long, which stays negative): never canonical here.
    digits = digits.otherwise(-(10**6))
    canonical = digits + (number < 0).cast("int")
    # "." is the one value the cast accepts (as 0) with no digit in it: one byte, like "0".
    dot = (value == ".").cast("int")
    return F.octet_length(value) + dot - F.coalesce(canonical, F.lit(-1))


def _ansi(df: DataFrame) -> bool:
    # Under ANSI mode a failed cast raises instead of giving null: the fast tests cannot be used.
    return str(df.sparkSession.conf.get("spark.sql.ansi.enabled", "false")).lower() == "true"


def _is_long(value: Column, fast: bool) -> Column:
    slow = value.rlike(LONG_RE)
    return (_fast_long(value) | slow) if fast else slow


def _is_double(value: Column, fast: bool) -> Column:
    slow = value.rlike(DOUBLE_RE)
    return (_fast_double(value) | slow) if fast else slow


def typed(raw: DataFrame, kinds: Mapping[str, str]) -> DataFrame:
    """``raw`` with its columns cast to ``kinds`` (columns typed string are left alone).

    Args:
        raw: the frame as read, CSV columns as strings.
        kinds: column name -> long, double or string.
    """
    casts = {name: kind for name, kind in kinds.items() if kind != "string"}
    if not casts:
        return raw
    return raw.select(
        *[
            (top(f.name).cast(casts[f.name]) if f.name in casts else top(f.name)).alias(f.name)
            for f in raw.schema.fields
        ]
    )


class CsvTyping:
    """The types of a CSV source's string columns: guessed from a sample, then settled."""

    def __init__(
        self,
        raw: DataFrame,
        known: Mapping[str, str] | None = None,
        sample: LocalSample | None = None,
    ) -> None:
        """Sample the source (one small Spark job, unless sampled on the driver) and guess each
        string column's type.

        Args:
            raw: the source as read, CSV columns as strings.
            known: each string column's exact type when already found without Spark
                (``_csvlocal``); then nothing is sampled.
            sample: the first records of one of the source's files, classified on the driver
                (``_csvlocal.sample_plain_csv``, one set per column of ``raw``); then Spark
                samples nothing either.
        """
        self.raw = raw
        fields = raw.schema.fields
        self.columns = [f.name for f in fields if isinstance(f.dataType, StringType)]
        self._fast = not _ansi(raw)
        self.guess: dict[str, str] = {}
        # Columns whose guess the data has yet to confirm, with the aggregate that does.
        self._checks: dict[str, tuple[Column, Callable[[Any], bool]]] = {}
        self.kinds: dict[str, str] | None = None
        if not self.columns:
            self.kinds = {}
            return
        if known is not None:
            self.guess = {name: known[name] for name in self.columns}
            self.kinds = dict(self.guess)
            return
        if sample is not None and len(sample.found) == len(fields) == len(self.columns):
            founds = sample.found
            complete = sample.complete
        else:
            classes = [classify(top(n)).alias(f"c{i}") for i, n in enumerate(self.columns)]
            # limit() last, so that Spark takes the rows partition by partition and stops early.
            rows = raw.select(*classes).limit(SAMPLE_ROWS).collect()
            founds = [{row[i] for row in rows if row[i] is not None} for i in range(len(classes))]
            complete = len(rows) < SAMPLE_ROWS
        for name, found in zip(self.columns, founds, strict=True):
            self.guess[name] = kind_of(found)
            if complete or "string" in found:
                continue  # all the data, or a value no number check can undo
            value = top(name)
            if self.guess[name] == "long" and self._fast:
                # Sufficient, not necessary: a column of "007" or " 5" fails it and is then
                # typed by the exact aggregation (its staged write still counts if long).
                self._checks[name] = (F.sum(_canonical_excess(value)), _is_zero)
            elif self.guess[name] == "long":
                self._checks[name] = (F.min(_is_long(value, self._fast)), _is_true)
            elif self.guess[name] == "double":
                # The sample holds a non-integer, so "every value a number" makes it double.
                self._checks[name] = (F.min(_is_double(value, self._fast)), _is_true)
            else:
                # Only nulls so far: a string unless every later value is a number.
                self._checks[name] = (F.min(_is_double(value, self._fast)), _is_not_true)
        if not self._checks:
            self.kinds = dict(self.guess)

    @property
    def settled(self) -> bool:
        """Whether the types are known exactly."""
        return self.kinds is not None

    def frame(self) -> DataFrame:
        """The source with its exact types (an aggregation over the data if not yet known)."""
        if self.kinds is None:
            self.kinds = self._exact()
        return typed(self.raw, self.kinds)

    def guessed(self) -> DataFrame:
        """The source typed as the sample suggests (exact once settled)."""
        return typed(self.raw, self.kinds if self.kinds is not None else self.guess)

    def unchecked(self, ignored: frozenset[str] = frozenset()) -> list[str]:
        """The columns whose guess the data has yet to confirm, but for ``ignored`` ones.

        Args:
            ignored: columns whose type the frame being written does not depend on.
        """
        return [name for name in self._checks if name not in ignored]

    def observed(
        self, observation: Observation, ignored: frozenset[str] = frozenset()
    ) -> DataFrame:
        """The guessed frame, with the checks of the guess observed as the data flows.

        Args:
            observation: a fresh Observation; read it with ``confirm`` after the action.
            ignored: columns not to check (``unchecked``).
        """
        names = self.unchecked(ignored)
        if self.kinds is not None or not names:
            return self.guessed()
        metrics = [self._checks[name][0].alias(f"c{i}") for i, name in enumerate(names)]
        return typed(self.raw.observe(observation, *metrics), self.guess)

    def confirm(
        self, metrics: Mapping[str, Any] | None, ignored: frozenset[str] = frozenset()
    ) -> bool:
        """Settle the types from a written frame's observed checks; whether the guess held
        (for every column the frame depends on).

        Args:
            metrics: what the observation of ``observed`` recorded, or None when it did not
                arrive (then the types are computed with an aggregation).
            ignored: the columns ``observed`` did not check; their guesses stay unconfirmed
                (settled by an aggregation if something needs them).
        """
        if self.kinds is not None:
            return self.kinds == self.guess
        names = self.unchecked(ignored)
        if metrics is not None:
            verdicts = [self._checks[name][1](metrics.get(f"c{i}")) for i, name in enumerate(names)]
            if all(verdicts):
                for name in names:
                    del self._checks[name]
                if not self._checks:
                    self.kinds = dict(self.guess)
                return True
        self.kinds = self._exact()
        return self.kinds == self.guess

    def _exact(self) -> dict[str, str]:
        """Every string column's type over all values, in one aggregation."""
        aggregates = []
        for i, name in enumerate(self.columns):
            value = top(name)
            aggregates += [
                F.count(value).alias(f"n{i}"),
                F.min(_is_double(value, self._fast)).alias(f"d{i}"),
                F.min(_is_long(value, self._fast)).alias(f"l{i}"),
            ]
        row = self.raw.agg(*aggregates).collect()[0]
        kinds = {}
        for i, name in enumerate(self.columns):
            if not row[f"n{i}"] or not row[f"d{i}"]:
                kinds[name] = "string"
            else:
                kinds[name] = "long" if row[f"l{i}"] else "double"
        return kinds


def _is_true(value: Any) -> bool:
    return value is True


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and value == 0


def _is_not_true(value: Any) -> bool:
    return value is not True


@dataclass(frozen=True)
class PendingFrame:
    """A DynamicFrame's data before its source's types are settled: the source and the
    transforms applied since, replayed on the settled source."""

    typing: CsvTyping
    steps: tuple[Step, ...]
    preview: DataFrame
    """The guessed source through the steps: each step runs on it when added, so a transform's
    errors show where it is called; its data are never used."""
    ignored: frozenset[str] = frozenset()
    """Source columns whose type the data cannot depend on (the first step drops them, or
    casts them the same whatever their type): a write need not check their guess."""

    @classmethod
    def of(cls, typing: CsvTyping) -> PendingFrame:
        """The untransformed source.

        Args:
            typing: the source.
        """
        return cls(typing, (), typing.guessed())

    def then(
        self, step: Step, ignores: Callable[[Mapping[str, str]], frozenset[str]] | None = None
    ) -> PendingFrame:
        """This frame with one more transform.

        Args:
            step: a transform made of column expressions only (no filter, no action).
            ignores: given each column's guessed type, the columns whose type the step's
                output cannot depend on (``_ops.types_mapping_ignores``); used for the first
                step only, whose input is the source itself.
        """
        ignored = self.ignored
        if not self.steps and ignores is not None:
            ignored = ignores(self.typing.guess)
        return PendingFrame(self.typing, (*self.steps, step), step(self.preview), ignored)

    def _through(self, df: DataFrame) -> DataFrame:
        for step in self.steps:
            df = step(df)
        return df

    def settle(self) -> DataFrame:
        """The data with the source's exact types."""
        return self._through(self.typing.frame())

    def guessed(self) -> DataFrame:
        """The data with the guessed types, unchecked (final when ``unchecked`` is empty)."""
        return self._through(self.typing.guessed())

    def unchecked(self) -> list[str]:
        """The source columns the data depend on whose guessed type is not yet confirmed."""
        return self.typing.unchecked(self.ignored)

    def observed(self, observation: Observation) -> DataFrame:
        """The data with the guessed types, the guess checked as it flows.

        Args:
            observation: a fresh Observation.
        """
        return self._through(self.typing.observed(observation, self.ignored))


class StagedFiles:
    """Files a write put in a hidden folder of its target, not yet part of the target."""

    def __init__(self, staging: str, target: str) -> None:
        """Name the staging folder and its target.

        Args:
            staging: the folder the write went to (inside ``target``, named ``_...``, so Spark
                and Glue readers skip it meanwhile).
            target: the folder the files belong in.
        """
        self.staging = staging
        self.target = target

    def publish(self) -> None:
        """Move the staged files into the target, each to the same relative place (partition
        folders too); files of earlier writes stay, as an append keeps them."""
        success = []
        for dirpath, _dirnames, filenames in os.walk(self.staging):
            destination = os.path.join(self.target, os.path.relpath(dirpath, self.staging))
            os.makedirs(destination, exist_ok=True)
            for name in filenames:
                moves = (os.path.join(dirpath, name), os.path.join(destination, name))
                if name.lstrip(".").startswith("_SUCCESS"):
                    success.append(moves)  # the marker last, once the data are in place
                else:
                    os.replace(*moves)
        for moves in success:
            os.replace(*moves)
        shutil.rmtree(self.staging)

    def discard(self) -> None:
        """Delete the staged files."""
        shutil.rmtree(self.staging, ignore_errors=True)


def staging_folder(target: str) -> str:
    """A fresh hidden folder inside ``target`` for a write to be checked before it counts.

    Args:
        target: the local folder being written to.
    """
    return os.path.join(target, f"{STAGING_PREFIX}{uuid.uuid4().hex}")


def _metrics(observation: Observation) -> dict[str, Any] | None:
    # Observation.get blocks until the metrics arrive; a daemon thread bounds the wait.
    result: dict[str, Any] = {}

    def fetch() -> None:
        result.update(observation.get)

    waiter = threading.Thread(target=fetch, name="awsglue-csv-types", daemon=True)
    waiter.start()
    waiter.join(METRICS_TIMEOUT_S)
    if waiter.is_alive() or not result:
        log.warning("the CSV type checks of a write did not arrive; computing the types again")
        return None
    return result


def write_checked(
    pending: PendingFrame,
    write_staged: Callable[[DataFrame], StagedFiles | None],
    write: Callable[[DataFrame], None],
) -> None:
    """Write a frame whose source types are guessed, in one pass when the guess holds.

    Args:
        pending: the frame.
        write_staged: writes a DataFrame into a staging folder of the sink; None when it wrote
            nothing (a frame without fields).
        write: writes a DataFrame to the sink directly (after a guess that did not hold).
    """
    if pending.typing.settled:
        write(pending.settle())
        return
    if not pending.unchecked():
        # Every guess the data depend on is confirmed: they are final as guessed.
        write(pending.guessed())
        return
    observation = Observation()
    staged = write_staged(pending.observed(observation))
    if staged is None:
        return
    if pending.typing.confirm(_metrics(observation), pending.ignored):
        staged.publish()
        return
    staged.discard()
    log.info(
        "the sampled CSV types did not hold for every record; writing again as %s",
        pending.typing.kinds,
    )
    write(pending.settle())
