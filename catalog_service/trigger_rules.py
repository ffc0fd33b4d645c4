"""Glue's rules for trigger definitions beyond the model's shapes (docs/glue-semantics.md §2).

Pure functions over Glue-form dicts (``validate_request`` has already checked the model's
shapes, lengths and enums): each check raises one InvalidInputException whose ``field`` is the
member path (``Predicate.Conditions[1].State``, in the ErrorInfo metadata for gRPC clients).
Where AWS's text is known the message is exactly that text, with no path (``_aws``, each with
its source; docs/glue-fidelity.md lists them); elsewhere it is our ``<path>: <what>``.

Decisions where Glue leaves room (docs/glue-semantics.md §2, §3c):
- A Schedule on a non-SCHEDULED trigger and a Predicate on a non-CONDITIONAL one are rejected,
  not ignored: Glue would store them without effect, which only hides a mistake.
- Crawlers do not exist here: a CrawlerName in an action, or a condition that names only a
  crawler, is rejected. A condition naming both a job and a crawler keeps only its job fields,
  as moto does (the job takes precedence).
- StartOnCreation=true is refused for ON_DEMAND (Glue's documented rule) and for EVENT (an
  EVENT trigger cannot be started at all, so starting it on creation cannot be honoured).
- A schedule given in CreateTrigger or UpdateTrigger that never fires again (a past Year, the
  30th of February) is refused; one stored earlier that has since expired is left alone.
"""

from __future__ import annotations

from datetime import datetime

from glue_vocabulary.cron import InvalidScheduleError, parse_schedule
from glue_vocabulary.shapes import GlueDict
from servicekit.errors import InvalidInputException

WATCHABLE_STATES = ("SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT")
# The types that have a schedule to switch on: StartTrigger activates them, StartOnCreation
# is honoured for them. ON_DEMAND fires once per StartTrigger; EVENT is never started.
FIRING_TYPES = ("SCHEDULED", "CONDITIONAL")
_CRAWLER_CONDITION_FIELDS = ("CrawlerName", "CrawlState")


def _fail(field: str, message: str) -> InvalidInputException:
    """A rule whose AWS text is not known: our words, after the member path."""
    return InvalidInputException(f"{field}: {message}", field=field)


def _aws(field: str, message: str) -> InvalidInputException:
    """A rule whose AWS text is known: exactly that text; the path only in ``field``."""
    return InvalidInputException(message, field=field)


def normalized(definition: GlueDict) -> GlueDict:
    """The definition as stored: conditions that name a job lose their crawler fields.

    Glue lets a condition's JobName take precedence over its CrawlerName (moto drops the crawler
    fields); keeping them would show a crawler this service never watches. An empty Predicate
    (a client that sent the message with nothing in it) counts as absent.
    """
    result = dict(definition)
    predicate = result.get("Predicate")
    if predicate is not None and not predicate:
        del result["Predicate"]
    elif predicate:
        conditions = [
            {k: v for k, v in c.items() if k not in _CRAWLER_CONDITION_FIELDS}
            if c.get("JobName")
            else c
            for c in predicate.get("Conditions") or []
        ]
        result["Predicate"] = {**predicate, "Conditions": conditions}
    return result


def check_schedule(
    schedule: str | None, field: str = "Schedule", *, fires_after: datetime | None = None
) -> None:
    """A SCHEDULED trigger's Glue cron expression: present, parseable, and (with
    ``fires_after``) due at least once more after that instant.

    Raises:
        InvalidInputException: naming ``field`` and, for a bad expression, the cron field at
            fault (``Schedule: Day-of-week: 8 is out of range 1-7 (SUN-SAT)``).
    """
    if not schedule:
        raise _fail(field, "Schedule cannot be null or empty for a SCHEDULED trigger")
    try:
        parsed = parse_schedule(schedule)
    except InvalidScheduleError as exc:
        # The parser names "Schedule" itself when the expression as a whole is wrong.
        detail = exc.message if exc.field == "Schedule" else f"{exc.field}: {exc.message}"
        raise _fail(field, detail) from None
    if fires_after is not None and parsed.next_fire_after(fires_after) is None:
        raise _fail(
            field,
            f"{parsed.expression} never fires after {fires_after:%Y-%m-%d %H:%M} UTC "
            "(check the Year and Day-of-month fields)",
        )


def check_actions(actions: list[GlueDict], field: str = "Actions") -> None:
    """Actions: at least one; each names a job (crawlers do not exist here)."""
    if not actions:
        raise _fail(field, "a trigger needs at least one action")
    for index, action in enumerate(actions):
        where = f"{field}[{index}]"
        if action.get("JobName") and action.get("CrawlerName"):
            # AWS's text: moto test_glue.py
            # test_create_trigger_with_action_with_job_name_and_crawler_name.
            raise _aws(where, "Both JobName and CrawlerName cannot be set together in an action")
        if action.get("CrawlerName"):
            raise _fail(
                f"{where}.CrawlerName",
                "crawlers are not supported by this service; an action must start a job",
            )
        if not action.get("JobName"):
            raise _fail(f"{where}.JobName", "an action must name a job (JobName)")


def check_predicate(predicate: GlueDict | None, field: str = "Predicate") -> None:
    """A CONDITIONAL trigger's predicate: Glue's messages for each missing part."""
    conditions = (predicate or {}).get("Conditions") or []
    if not predicate or not conditions:
        # AWS's text: moto test_glue.py test_create_conditional_trigger_with_no_predicates.
        raise _aws(field, "Predicate cannot be null or empty")
    if len(conditions) > 1 and not predicate.get("Logical"):
        raise _fail(f"{field}.Logical", "Logical (AND or ANY) is required with several conditions")
    for index, condition in enumerate(conditions):
        where = f"{field}.Conditions[{index}]"
        if condition.get("CrawlerName") and not condition.get("JobName"):
            raise _fail(
                f"{where}.CrawlerName",
                "crawlers are not supported by this service; a condition must watch a job",
            )
        if not condition.get("JobName"):
            # AWS's text: moto test_glue.py test_create_predicate_with_no_crawler_name_or_job_name.
            raise _aws(where, "JobName or CrawlerName in condition cannot be null or empty")
        if not condition.get("LogicalOperator"):
            # AWS's text: aws-cdk issue #34652; moto test_create_predicate_without_logical_operator.
            raise _aws(f"{where}.LogicalOperator", "Logical operator cannot be null or empty")
        state = condition.get("State")
        if not state:
            # AWS's text: moto test_glue.py test_create_predicate_with_no_job_state.
            raise _aws(
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


def check_trigger(
    definition: GlueDict,
    *,
    start_on_creation: bool = False,
    schedule_fires_after: datetime | None = None,
) -> None:
    """Every rule for a whole trigger definition (after create, or after an update merged).

    Args:
        definition: The trigger in Glue form (Type, Actions, Schedule, Predicate ...).
        start_on_creation: CreateTrigger's StartOnCreation.
        schedule_fires_after: When the request supplies the Schedule: now, so a schedule that
            never fires again is refused. None for a schedule stored earlier.

    Raises:
        InvalidInputException: the first rule broken, naming its field.
    """
    kind = definition.get("Type")
    check_actions(definition.get("Actions") or [])
    if kind == "SCHEDULED":
        check_schedule(definition.get("Schedule"), fires_after=schedule_fires_after)
    elif definition.get("Schedule"):
        raise _fail("Schedule", f"only SCHEDULED triggers have a Schedule (this one is {kind})")
    if kind == "CONDITIONAL":
        check_predicate(definition.get("Predicate"))
        watched = {c.get("JobName") for c in definition["Predicate"]["Conditions"]}
        started = {a.get("JobName") for a in definition.get("Actions") or []}
        if watched & started:
            # AWS's text: terraform-provider-aws issue #39571 quotes it.
            raise _aws("Actions", "Job cannot be a Predicate and Action for Conditional Trigger")
    elif definition.get("Predicate"):
        raise _fail("Predicate", f"only CONDITIONAL triggers have a Predicate (this one is {kind})")
    if start_on_creation and kind not in FIRING_TYPES:
        raise _fail(
            "StartOnCreation",
            f"StartOnCreation is not allowed for {kind} triggers (only SCHEDULED and CONDITIONAL)",
        )
