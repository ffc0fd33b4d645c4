"""The printed tables, the targets (as ratios of this run's baselines, and the trigger targets)
and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.glue_figures import RUN_PATH_ALONE_JOB
from bench.load import Figure
from bench.trigger_figures import TriggerFigure

ORDER = [
    "echo",
    "echo_insert",
    "spawn",
    "spawn_one",
    "create_job",
    "get_job_run",
    "start_job_run",
    "start_job_run_held",
    "trivial_runs",
    "trivial_runs_alone",
    "start_to_succeeded",
]
GROUPS = ["baseline", "postgres", "sqlite"]
CPU_PARTS = [
    ("loadgen", "gen"),
    ("server", "echo"),
    ("catalog", "cat"),
    ("scheduler", "sch"),
    ("postgres", "pg"),
    ("other", "other"),
    ("machine", "all"),
]


@dataclass(frozen=True, slots=True)
class Target:
    """One target and what this run measured for it."""

    backend: str
    text: str
    measured: str
    verdict: str
    value: float
    goal: float
    binding: bool

    def as_dict(self) -> dict[str, Any]:
        """For the JSON file."""
        return {
            "backend": self.backend,
            "target": self.text,
            "measured": self.measured,
            "value": self.value,
            "goal": self.goal,
            "verdict": self.verdict,
            "binding": self.binding,
        }


def num(value: float, digits: int = 0) -> str:
    """``value`` with thousands separators and ``digits`` decimals; ``-`` for NaN."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def cpu_cores(cpu: dict[str, float], parts: list[tuple[str, str]] = CPU_PARTS) -> str:
    """A figure's cores by party (``parts``: key, column label), as the tables print them."""
    return " ".join(f"{label} {cpu[key]:.2f}" for key, label in parts if key in cpu)


@dataclass(frozen=True, slots=True)
class FigureColumns:
    """The columns every figure table starts with (group, figure, rate/s, p50 ms, p99 ms, n,
    err), and their widths."""

    group: int = 10
    rate: int = 9
    ms: int = 8

    def header(self) -> str:
        """The header of these columns."""
        return (
            f"{'':<{self.group}} {'figure':<52} {'rate/s':>{self.rate}} {'p50 ms':>{self.ms}} "
            f"{'p99 ms':>{self.ms}} {'n':>6} {'err':>5}"
        )

    def cells(self, figure: Figure, errors: int) -> str:
        """``figure``'s cells of these columns."""
        return (
            f"{figure.group:<{self.group}} {figure.name:<52} {num(figure.rate):>{self.rate}} "
            f"{num(figure.p50_ms, 1):>{self.ms}} {num(figure.p99_ms, 1):>{self.ms}} "
            f"{figure.ok:>6} {errors:>5}"
        )


def figure_rows(
    figures: list[Figure],
    groups: list[str],
    order: list[str],
    row: Callable[[Figure, int], str],
) -> tuple[list[str], list[str]]:
    """A table's rows and footnotes: ``row(figure, errors)`` for each figure, ranked by
    ``groups`` then ``order`` (unknown ones last), a blank line between groups; a footnote
    for each note and each figure with errors."""
    rank: Callable[[Figure], tuple[int, int]] = lambda f: (  # noqa: E731
        groups.index(f.group) if f.group in groups else 99,
        order.index(f.key) if f.key in order else 99,
    )
    lines: list[str] = []
    footnotes: list[str] = []
    group = None
    for figure in sorted(figures, key=rank):
        if figure.group != group:
            if group is not None:
                lines.append("")
            group = figure.group
        errors = sum(figure.errors.values())
        lines.append(row(figure, errors))
        if figure.note:
            footnotes.append(f"[{figure.group} / {figure.key}] {figure.note}")
        if errors:
            footnotes.append(
                f"[{figure.group} / {figure.key}] errors {dict(figure.errors)}; first: "
                f"{figure.first_error}"
            )
    return lines, footnotes


def _find(figures: list[Figure], group: str, key: str) -> Figure | None:
    for figure in figures:
        if figure.group == group and figure.key == key and figure.ok:
            return figure
    return None


# How much longer than one bare interpreter spawn a whole run may take, StartJobRun to SUCCEEDED.
LATENCY_OVER_SPAWN_MS = 30.0


def targets(figures: list[Figure], backend: str) -> list[Target]:
    """The run path's targets on ``backend`` (binding on PostgreSQL, informational on SQLite),
    as the run-path issue states them."""
    binding = backend == "postgres"
    echo = _find(figures, "baseline", "echo")
    insert = _find(figures, "baseline", "echo_insert")
    spawn = _find(figures, "baseline", "spawn")
    spawn_one = _find(figures, "baseline", "spawn_one")
    result: list[Target] = []

    def ratio(text: str, key: str, base: Figure | None, goal: float, unit: str = "/s") -> None:
        figure = _find(figures, backend, key)
        if figure is None or base is None:
            result.append(Target(backend, text, "not measured", "n/a", math.nan, goal, binding))
            return
        value = figure.rate / base.rate
        measured = f"{figure.rate:,.0f} vs {base.rate:,.0f}{unit} = {value:.0%}"
        verdict = "MET" if value >= goal else "NOT MET"
        result.append(Target(backend, text, measured, verdict, value, goal, binding))

    ratio("GetJobRun/s >= 60% of bare echo", "get_job_run", echo, 0.60)
    ratio("CreateJob/s >= 100% of echo+insert", "create_job", insert, 1.00)
    ratio("StartJobRun/s, admission only >= 75% of echo+insert", "start_job_run_held", insert, 0.75)
    ratio("StartJobRun/s, runs executing >= 50% of echo+insert", "start_job_run", insert, 0.50)
    ratio("trivial runs completed/s >= 70% of bare spawn", "trivial_runs", spawn, 0.70)
    alone = _find(figures, backend, "trivial_runs_alone")
    if alone is not None and spawn is not None:
        # Not a target: the run path without the interpreter the previous line's runs start
        # (docs/performance.md, "Seventh round"), so the two can be told apart.
        value = alone.rate / spawn.rate
        measured = f"{alone.rate:,.0f} vs {spawn.rate:,.0f}/s = {value:.0%}"
        text = f"  the same runs, job {RUN_PATH_ALONE_JOB} (the run path alone)"
        result.append(Target(backend, text, measured, "(not a target)", value, math.nan, False))

    text = f"StartJobRun->SUCCEEDED p50 <= one bare spawn p50 + {LATENCY_OVER_SPAWN_MS:.0f} ms"
    figure = _find(figures, backend, "start_to_succeeded")
    if figure is None or spawn_one is None:
        result.append(
            Target(backend, text, "not measured", "n/a", math.nan, LATENCY_OVER_SPAWN_MS, binding)
        )
    else:
        over = figure.p50_ms - spawn_one.p50_ms
        measured = f"{figure.p50_ms:.1f} vs {spawn_one.p50_ms:.1f} ms = +{over:.1f} ms"
        verdict = "MET" if over <= LATENCY_OVER_SPAWN_MS else "NOT MET"
        result.append(
            Target(backend, text, measured, verdict, over, LATENCY_OVER_SPAWN_MS, binding)
        )
    return result


def render(
    figures: list[Figure], all_targets: list[Target], header: list[str], notes: list[str]
) -> str:
    """The whole report as text."""
    lines = [*header, ""]
    table = FigureColumns()
    columns = f"{table.header()}  cpu cores while measured"
    lines += [columns, "-" * (len(columns) + 24)]

    def row(figure: Figure, errors: int) -> str:
        return f"{table.cells(figure, errors)}  {cpu_cores(figure.cpu)}"

    body, footnotes = figure_rows(figures, GROUPS, ORDER, row)
    lines += body
    lines.append("")
    lines.append(
        "cpu: gen = this load generator, echo = baseline server, cat = catalog, "
        "sch = scheduler, pg = all PostgreSQL processes, other = the rest (job and "
        "supervisor processes, other users), all = whole machine (2 cores = 2.00)"
    )
    lines += ["", "Notes:", *(f"  {n}" for n in notes + footnotes)]
    for backend in ("postgres", "sqlite"):
        rows = [t for t in all_targets if t.backend == backend]
        if not rows:
            continue
        lines.append("")
        if backend == "postgres":
            lines.append("Targets (stated on PostgreSQL):")
        else:
            lines.append(
                "Same ratios on SQLite (informational; the targets are stated on PostgreSQL):"
            )
        width = max(len(t.text) for t in rows)
        for t in rows:
            lines.append(f"  {t.text:<{width}}  {t.measured:<36}  {t.verdict}")
    return "\n".join(lines)


def write_json(
    path: Path,
    figures: list[Figure],
    all_targets: list[Target],
    meta: dict[str, Any],
    trigger_figures: list[TriggerFigure] | None = None,
    gateway_figures: list[Figure] | None = None,
) -> None:
    """Everything measured, machine-readable (the trigger targets are in ``targets`` too)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = {
        "meta": meta,
        "figures": [f.as_dict() for f in figures],
        "targets": [t.as_dict() for t in all_targets],
        "trigger_figures": [f.as_dict() for f in trigger_figures or []],
        "gateway_figures": [f.as_dict() for f in gateway_figures or []],
    }
    path.write_text(json.dumps(clean(data), indent=2) + "\n")


# -- the trigger section -------------------------------------------------------------------------

TRIGGER_GROUPS = ["postgres", "sqlite", "apscheduler"]
TRIGGER_ORDER = [
    "add_trigger",
    "burst",
    "burst_coroutine_default",
    "burst_coroutine_none",
    "burst_function_default",
    "burst_function_none",
    "scale_rss",
    "scale_add",
    "restart_serving",
    "restart_first_fire",
]


def _find_trigger(figures: list[TriggerFigure], group: str, key: str) -> TriggerFigure | None:
    for figure in figures:
        if figure.group == group and figure.key == key:
            return figure
    return None


def trigger_targets(figures: list[TriggerFigure], backend: str) -> list[Target]:
    """The four trigger targets on ``backend`` (binding on PostgreSQL)."""
    binding = backend == "postgres"
    result: list[Target] = []

    def check(
        text: str,
        key: str,
        get: Callable[[TriggerFigure], float],
        goal: float,
        show: Callable[[float], str],
    ) -> None:
        figure = _find_trigger(figures, backend, key)
        value = get(figure) if figure is not None else math.nan
        if math.isnan(value):
            result.append(Target(backend, text, "not measured", "n/a", math.nan, goal, binding))
            return
        verdict = "MET" if value <= goal else "NOT MET"
        result.append(Target(backend, text, show(value), verdict, value, goal, binding))

    def missed(f: TriggerFigure) -> float:
        return math.nan if f.missed is None else float(f.missed)

    check("burst of 10,000: 0 fires missed", "burst", missed, 0.0, lambda v: f"{v:,.0f} missed")
    check(
        "burst of 10,000: p99 lateness <= 1 s",
        "burst",
        lambda f: f.p99_s,
        1.0,
        lambda v: f"p99 {v:.2f} s",
    )
    check(
        "100k triggers: scheduler RSS <= 200 MB",
        "scale_rss",
        lambda f: f.value,
        200.0,
        lambda v: f"{v:,.0f} MB",
    )
    check(
        "100k triggers: restart -> first fire <= 10 s",
        "restart_first_fire",
        lambda f: f.value,
        10.0,
        lambda v: f"{v:.2f} s",
    )
    return result


def render_triggers(
    figures: list[TriggerFigure], all_targets: list[Target], notes: list[str]
) -> str:
    """The trigger section of the report."""

    def secs(value: float) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:,.2f}"

    def count(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    def value_text(figure: TriggerFigure) -> str:
        if math.isnan(figure.value):
            return "-"
        digits = 2 if figure.unit == "s" else 0
        return f"{figure.value:,.{digits}f} {figure.unit}".replace(" /s", "/s")

    rank: Callable[[TriggerFigure], tuple[int, int]] = lambda f: (  # noqa: E731
        TRIGGER_GROUPS.index(f.group) if f.group in TRIGGER_GROUPS else 99,
        TRIGGER_ORDER.index(f.key) if f.key in TRIGGER_ORDER else 99,
    )
    lines = [
        (
            "Trigger figures (the scheduler ALONE: no catalog, so no event-consumer load; "
            "lateness in seconds)"
        ),
    ]
    columns = (
        f"{'':<11} {'figure':<76} {'n':>7} {'missed':>7} {'p50 s':>7} {'p99 s':>7} "
        f"{'max s':>7} {'value':>10}  cpu cores"
    )
    lines += [columns, "-" * (len(columns) + 30)]
    group = None
    footnotes: list[str] = []
    for figure in sorted(figures, key=rank):
        if figure.group != group:
            if group is not None:
                lines.append("")
            group = figure.group
        lines.append(
            f"{figure.group:<11} {figure.name:<76} {count(figure.n):>7} "
            f"{count(figure.missed):>7} {secs(figure.p50_s):>7} {secs(figure.p99_s):>7} "
            f"{secs(figure.max_s):>7} {value_text(figure):>10}  {cpu_cores(figure.cpu)}"
        )
        if figure.note:
            footnotes.append(f"[{figure.group} / {figure.key}] {figure.note}")
        if figure.error:
            footnotes.append(f"[{figure.group} / {figure.key}] PROBLEM: {figure.error}")
    lines += ["", "Trigger notes:", *(f"  {n}" for n in notes + footnotes)]
    for backend in ("postgres", "sqlite"):
        rows = [t for t in all_targets if t.backend == backend]
        if not rows:
            continue
        lines.append("")
        if backend == "postgres":
            lines.append("Trigger targets (stated on PostgreSQL):")
        else:
            lines.append("Trigger targets on SQLite (informational):")
        width = max(len(t.text) for t in rows)
        for t in rows:
            lines.append(f"  {t.text:<{width}}  {t.measured:<36}  {t.verdict}")
    return "\n".join(lines)
