"""The printed table, the targets (as ratios of this run's baselines) and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import Figure

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


def _num(value: float, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _cpu(figure: Figure) -> str:
    if not figure.cpu:
        return ""
    return " ".join(
        f"{label} {figure.cpu[key]:.2f}" for key, label in CPU_PARTS if key in figure.cpu
    )


def _find(figures: list[Figure], group: str, key: str) -> Figure | None:
    for figure in figures:
        if figure.group == group and figure.key == key and figure.ok:
            return figure
    return None


def targets(figures: list[Figure], backend: str) -> list[Target]:
    """The five targets on ``backend`` (binding on PostgreSQL, informational on SQLite)."""
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
    ratio("StartJobRun/s >= 50% of echo+insert", "start_job_run", insert, 0.50)
    ratio("trivial runs completed/s >= 70% of bare spawn", "trivial_runs", spawn, 0.70)

    text = "StartJobRun->SUCCEEDED p50 <= one bare spawn p50 + 100 ms"
    figure = _find(figures, backend, "start_to_succeeded")
    if figure is None or spawn_one is None:
        result.append(Target(backend, text, "not measured", "n/a", math.nan, 100.0, binding))
    else:
        over = figure.p50_ms - spawn_one.p50_ms
        measured = f"{figure.p50_ms:.1f} vs {spawn_one.p50_ms:.1f} ms = +{over:.1f} ms"
        verdict = "MET" if over <= 100.0 else "NOT MET"
        result.append(Target(backend, text, measured, verdict, over, 100.0, binding))
    return result


def render(
    figures: list[Figure], all_targets: list[Target], header: list[str], notes: list[str]
) -> str:
    """The whole report as text."""
    lines = [*header, ""]
    rank: Callable[[Figure], tuple[int, int]] = lambda f: (  # noqa: E731
        GROUPS.index(f.group) if f.group in GROUPS else 99,
        ORDER.index(f.key) if f.key in ORDER else 99,
    )
    columns = f"{'':<10} {'figure':<52} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}"
    columns += f" {'err':>5}  cpu cores while measured"
    lines += [columns, "-" * (len(columns) + 24)]
    group = None
    footnotes: list[str] = []
    for figure in sorted(figures, key=rank):
        if figure.group != group:
            if group is not None:
                lines.append("")
            group = figure.group
        errors = sum(figure.errors.values())
        lines.append(
            f"{figure.group:<10} {figure.name:<52} {_num(figure.rate):>9} "
            f"{_num(figure.p50_ms, 1):>8} {_num(figure.p99_ms, 1):>8} {figure.ok:>6} "
            f"{errors:>5}  {_cpu(figure)}"
        )
        if figure.note:
            footnotes.append(f"[{figure.group} / {figure.key}] {figure.note}")
        if errors:
            footnotes.append(
                f"[{figure.group} / {figure.key}] errors {dict(figure.errors)}; first: "
                f"{figure.first_error}"
            )
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
    path: Path, figures: list[Figure], all_targets: list[Target], meta: dict[str, Any]
) -> None:
    """Everything measured, machine-readable."""

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
    }
    path.write_text(json.dumps(clean(data), indent=2) + "\n")
