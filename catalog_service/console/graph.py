"""The chains page's graph: jobs and triggers as nodes, laid out left to right by dependency.

A trigger's actions are edges trigger -> job; a conditional trigger's conditions are edges
job -> trigger (labelled with the state watched). Each node's column is the longest path
leading to it, so a chain reads left to right; within a column nodes are ordered by the mean
row of their predecessors (one barycentre pass), which keeps most edges from crossing.
Drawn as server-rendered SVG: a few hundred nodes need no layout library, and the page needs
no JavaScript to show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NODE_WIDTH = 190
NODE_HEIGHT = 40
COLUMN_GAP = 90
ROW_GAP = 22
MARGIN = 20
# Characters of a name shown in a node; the whole name is its tooltip.
LABEL_CHARS = 24


@dataclass(frozen=True, slots=True)
class Node:
    """A job or trigger placed on the canvas."""

    kind: str
    """``job`` or ``trigger``."""
    name: str
    label: str
    """The name, shortened to fit the box."""
    detail: str
    """A second line: a trigger's type and state; empty for a job."""
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow between two placed nodes."""

    path: str
    """The SVG path's ``d``."""
    label: str
    """The condition's watched state (job -> trigger), empty for actions."""
    label_x: int
    label_y: int


@dataclass(frozen=True, slots=True)
class Layout:
    """What the template draws."""

    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]


def _key(kind: str, name: str) -> tuple[str, str]:
    return (kind, name)


def chain_edges(
    triggers: Iterable[Mapping[str, Any]],
) -> tuple[dict[tuple[str, str], str], list[tuple[tuple[str, str], tuple[str, str], str]]]:
    """The nodes (key -> trigger detail, "" for jobs) and labelled edges of Glue triggers."""
    nodes: dict[tuple[str, str], str] = {}
    edges: list[tuple[tuple[str, str], tuple[str, str], str]] = []
    for trigger in triggers:
        name = str(trigger.get("Name", ""))
        this = _key("trigger", name)
        nodes[this] = f"{trigger.get('Type', '')} · {trigger.get('State', '')}"
        for condition in (trigger.get("Predicate") or {}).get("Conditions") or []:
            job = condition.get("JobName")
            if job:
                nodes.setdefault(_key("job", job), "")
                edges.append((_key("job", job), this, str(condition.get("State", ""))))
        for action in trigger.get("Actions") or []:
            job = action.get("JobName")
            if job:
                nodes.setdefault(_key("job", job), "")
                edges.append((this, _key("job", job), ""))
    return nodes, edges


def layout(triggers: Iterable[Mapping[str, Any]]) -> Layout:
    """Place the jobs and triggers of these Glue triggers."""
    details, edges = chain_edges(triggers)
    keys = sorted(details)
    predecessors: dict[tuple[str, str], list[tuple[str, str]]] = {k: [] for k in keys}
    for source, target, _ in edges:
        predecessors[target].append(source)
    # Longest path by relaxation; a cycle (a job whose success restarts itself) stops growing
    # after len(keys) rounds instead of looping.
    rank = dict.fromkeys(keys, 0)
    for _ in range(len(keys)):
        changed = False
        for source, target, _label in edges:
            if rank[target] < rank[source] + 1 and rank[source] + 1 < len(keys):
                rank[target] = rank[source] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[tuple[str, str]]] = {}
    for key in keys:
        columns.setdefault(rank[key], []).append(key)
    row: dict[tuple[str, str], float] = {}
    for column in sorted(columns):
        members = columns[column]

        def barycentre(key: tuple[str, str]) -> tuple[float, tuple[str, str]]:
            placed = [row[p] for p in predecessors[key] if p in row]
            return (sum(placed) / len(placed) if placed else 0.0, key)

        members.sort(key=barycentre)
        row.update({key: index for index, key in enumerate(members)})
    position = {
        key: (
            MARGIN + rank[key] * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + int(row[key]) * (NODE_HEIGHT + ROW_GAP),
        )
        for key in keys
    }
    nodes = [
        Node(
            kind=key[0],
            name=key[1],
            label=key[1] if len(key[1]) <= LABEL_CHARS else key[1][: LABEL_CHARS - 1] + "…",
            detail=details[key],
            x=position[key][0],
            y=position[key][1],
        )
        for key in keys
    ]
    placed_edges = []
    for source, target, label in edges:
        sx, sy = position[source]
        tx, ty = position[target]
        x1, y1 = sx + NODE_WIDTH, sy + NODE_HEIGHT // 2
        x2, y2 = tx, ty + NODE_HEIGHT // 2
        # A horizontal S-curve; a backward edge (a cycle) bends out the same way and loops back.
        bend = max(40, abs(x2 - x1) // 2)
        path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
        placed_edges.append(
            Edge(path=path, label=label, label_x=(x1 + x2) // 2, label_y=(y1 + y2) // 2 - 4)
        )
    width = max((x for x, _ in position.values()), default=0) + NODE_WIDTH + 2 * MARGIN
    height = max((y for _, y in position.values()), default=0) + NODE_HEIGHT + 2 * MARGIN
    return Layout(width=width, height=height, nodes=nodes, edges=placed_edges)
