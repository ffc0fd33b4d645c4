"""Glue's rules for trigger definitions beyond the model's shapes (GLUE-SEMANTICS.md section 2).

Pure functions over Glue-form dicts: each raises one InvalidInputException naming the field,
with Glue's own wording where Glue's is known.
"""

from __future__ import annotations

from servicekit.cron import InvalidScheduleError, parse_schedule
from servicekit.errors import InvalidInputException
from servicekit.glue_shapes import GlueDict

WATCHABLE_STATES = ("SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT")
FIRING_TYPES = ("SCHEDULED", "CONDITIONAL")


def _fail(field: str, message: str) -> InvalidInputException:
    return InvalidInputException(f"{field}: {message}", field=field)


def check_schedule(schedule: str | None, field: str = "Schedule") -> None:
    """A SCHEDULED trigger's Glue cron expression must parse."""
    if not schedule:
        raise _fail(field, "Schedule cannot be null or empty for a SCHEDULED trigger")
    try:
        parse_schedule(schedule)
    except InvalidScheduleError as exc:
        raise _fail(field, f"{exc.field}: {exc.message}") from None


def check_actions(actions: list[GlueDict], field: str = "Actions") -> None:
    """Actions: at least one; each names a job (crawlers do not exist here)."""
    if not actions:
        raise _fail(field, "a trigger needs at least one action")
    for index, action in enumerate(actions):
        where = f"{field}[{index}]"
        if action.get("JobName") and action.get("CrawlerName"):
            raise _fail(where, "Both JobName and CrawlerName cannot be set together in an action")
        if action.get("CrawlerName"):
            raise _fail(f"{where}.CrawlerName", "crawlers are not supported by this scheduler")
        if not action.get("JobName"):
            raise _fail(f"{where}.JobName", "an action must name a job (JobName)")


def check_predicate(predicate: GlueDict | None, field: str = "Predicate") -> None:
    """A CONDITIONAL trigger's predicate: Glue's messages for each missing part."""
    conditions = (predicate or {}).get("Conditions") or []
    if not predicate or not conditions:
        raise _fail(field, "Predicate cannot be null or empty")
    if len(conditions) > 1 and not predicate.get("Logical"):
        raise _fail(f"{field}.Logical", "Logical (AND or ANY) is required with several conditions")
    for index, condition in enumerate(conditions):
        where = f"{field}.Conditions[{index}]"
        if condition.get("CrawlerName") and not condition.get("JobName"):
            raise _fail(f"{where}.CrawlerName", "crawlers are not supported by this scheduler")
        if not condition.get("JobName"):
            raise _fail(where, "JobName or CrawlerName in condition cannot be null or empty")
        if not condition.get("LogicalOperator"):
            raise _fail(f"{where}.LogicalOperator", "Logical operator cannot be null or empty")
        state = condition.get("State")
        if not state:
            raise _fail(
                f"{where}.State",
                "State cannot be null or empty, choose from one of the following job state: "
                "[SUCCEEDED, STOPPED, FAILED, TIMEOUT]",
            )
        if state not in WATCHABLE_STATES:
            raise _fail(
                f"{where}.State",
                f"a trigger can only watch the job states {', '.join(WATCHABLE_STATES)} "
                f"(got {state})",
            )


def check_trigger(definition: GlueDict, *, start_on_creation: bool = False) -> None:
    """Every rule for a whole trigger definition (after create, or after an update merged).

    Schedule on a non-SCHEDULED trigger and Predicate on a non-CONDITIONAL one are rejected:
    Glue would store them without effect, which only hides a mistake.
    """
    kind = definition.get("Type")
    check_actions(definition.get("Actions") or [])
    if kind == "SCHEDULED":
        check_schedule(definition.get("Schedule"))
    elif definition.get("Schedule"):
        raise _fail("Schedule", f"only SCHEDULED triggers have a Schedule (this one is {kind})")
    if kind == "CONDITIONAL":
        check_predicate(definition.get("Predicate"))
        watched = {c.get("JobName") for c in definition["Predicate"]["Conditions"]}
        started = {a.get("JobName") for a in definition.get("Actions") or []}
        if watched & started:
            raise _fail("Actions", "Job cannot be a Predicate and Action for Conditional Trigger")
    elif definition.get("Predicate"):
        raise _fail("Predicate", f"only CONDITIONAL triggers have a Predicate (this one is {kind})")
    if start_on_creation and kind not in FIRING_TYPES:
        raise _fail(
            "StartOnCreation",
            f"StartOnCreation is not allowed for {kind} triggers (only SCHEDULED and CONDITIONAL)",
        )
