"""The trigger definition rules (``catalog_service.trigger_rules``), without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from catalog_service.trigger_rules import (
    check_actions,
    check_predicate,
    check_schedule,
    check_trigger,
    normalized,
)
from catalog_service.validation import validate_request
from servicekit.errors import InvalidInputException

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


# AWS's own texts (docs/glue-fidelity.md): the message is exactly the text, with no path;
# every other rule keeps our "<path>: <what>".
AWS_TEXTS = {
    "Both JobName and CrawlerName cannot be set together in an action",
    "JobName or CrawlerName in condition cannot be null or empty",
    "Logical operator cannot be null or empty",
    (
        "State cannot be null or empty, choose from one of the following job state: "
        "[SUCCEEDED, STOPPED, FAILED, TIMEOUT]"
    ),
}


def assert_message(got: str, field: str, message: str) -> None:
    if message in AWS_TEXTS:
        assert got == message
    else:
        assert got.startswith(f"{field}: {message}"), got


def cond(job: str | None = "a", state: str | None = "SUCCEEDED", **extra: Any) -> dict[str, Any]:
    """A job condition with the members given (None leaves a member out)."""
    found = {"LogicalOperator": "EQUALS", "JobName": job, "State": state, **extra}
    return {k: v for k, v in found.items() if v is not None}


def trigger(kind: str, **members: Any) -> dict[str, Any]:
    """A valid trigger of ``kind`` starting job ``b``, with ``members`` replacing defaults."""
    base: dict[str, Any] = {"Name": "t", "Type": kind, "Actions": [{"JobName": "b"}]}
    if kind == "SCHEDULED":
        base["Schedule"] = "cron(0 3 * * ? *)"
    if kind == "CONDITIONAL":
        base["Predicate"] = {"Conditions": [cond("a")]}
    return {**base, **members}


def refused(call: Any, *args: Any, **kwargs: Any) -> InvalidInputException:
    """Call, expecting InvalidInputException; returns it."""
    with pytest.raises(InvalidInputException) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("kind", ["SCHEDULED", "CONDITIONAL", "ON_DEMAND", "EVENT"])
def test_valid_definitions_pass(kind: str) -> None:
    check_trigger(trigger(kind), schedule_fires_after=NOW)


def test_start_on_creation_is_for_scheduled_and_conditional_only() -> None:
    check_trigger(trigger("SCHEDULED"), start_on_creation=True)
    check_trigger(trigger("CONDITIONAL"), start_on_creation=True)
    for kind in ("ON_DEMAND", "EVENT"):
        error = refused(check_trigger, trigger(kind), start_on_creation=True)
        assert error.field == "StartOnCreation"
        assert f"not allowed for {kind} triggers" in error.message


# -- Schedule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", [None, ""])
def test_scheduled_needs_a_schedule(schedule: str | None) -> None:
    error = refused(check_trigger, trigger("SCHEDULED", Schedule=schedule))
    assert error.field == "Schedule"
    assert error.message == "Schedule: Schedule cannot be null or empty for a SCHEDULED trigger"


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # The cron field at fault is named after "Schedule".
        ("cron(0 12 ? * 8 *)", "Schedule: Day-of-week: "),
        ("cron(61 * * * ? *)", "Schedule: Minutes: "),
        ("cron(0 0 * * * *)", "Schedule: Day-of-month and Day-of-week: exactly one"),
        # The expression as a whole: "Schedule" once, not twice.
        ("cron(0 0 * * ?)", "Schedule: expected 6 fields"),
        ("rate(5 minutes)", "Schedule: rate(...) expressions are EventBridge's"),
    ],
)
def test_a_bad_schedule_names_its_field(schedule: str, expected: str) -> None:
    error = refused(check_schedule, schedule)
    assert error.field == "Schedule"
    assert error.message.startswith(expected), error.message
    assert "Schedule: Schedule:" not in error.message


@pytest.mark.parametrize("schedule", ["cron(0 0 1 1 ? 1999)", "cron(0 0 30 2 ? *)"])
def test_a_supplied_schedule_that_never_fires_again_is_refused(schedule: str) -> None:
    error = refused(
        check_trigger, trigger("SCHEDULED", Schedule=schedule), schedule_fires_after=NOW
    )
    assert error.field == "Schedule"
    assert "never fires after 2026-11-26 18:00 UTC" in error.message
    # A stored schedule (no instant given) is only parsed: an expired one does not block
    # an unrelated update.
    check_trigger(trigger("SCHEDULED", Schedule=schedule))


def test_schedule_only_on_scheduled_triggers() -> None:
    for kind in ("CONDITIONAL", "ON_DEMAND", "EVENT"):
        error = refused(check_trigger, trigger(kind, Schedule="cron(0 3 * * ? *)"))
        assert error.field == "Schedule"
        assert f"only SCHEDULED triggers have a Schedule (this one is {kind})" in error.message


# -- Predicate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("predicate", [None, {}, {"Logical": "AND"}, {"Conditions": []}])
def test_conditional_needs_a_predicate(predicate: dict[str, Any] | None) -> None:
    error = refused(check_trigger, trigger("CONDITIONAL", Predicate=predicate))
    assert error.field == "Predicate"
    assert error.message == "Predicate cannot be null or empty"


def test_predicate_only_on_conditional_triggers() -> None:
    for kind in ("SCHEDULED", "ON_DEMAND", "EVENT"):
        error = refused(check_trigger, trigger(kind, Predicate={"Conditions": [cond("a")]}))
        assert error.field == "Predicate"
        assert "only CONDITIONAL triggers have a Predicate" in error.message


@pytest.mark.parametrize(
    ("conditions", "field", "message"),
    [
        (
            [cond(job=None)],
            "Predicate.Conditions[0]",
            "JobName or CrawlerName in condition cannot be null or empty",
        ),
        (
            [cond("a"), {"JobName": "c", "State": "FAILED"}],
            "Predicate.Logical",
            "Logical (AND or ANY) is required with several conditions",
        ),
        (
            [{"JobName": "a", "State": "SUCCEEDED"}],
            "Predicate.Conditions[0].LogicalOperator",
            "Logical operator cannot be null or empty",
        ),
        (
            [cond("a", state=None)],
            "Predicate.Conditions[0].State",
            (
                "State cannot be null or empty, choose from one of the following job state: "
                "[SUCCEEDED, STOPPED, FAILED, TIMEOUT]"
            ),
        ),
        (
            [cond("a", state="RUNNING")],
            "Predicate.Conditions[0].State",
            (
                "a trigger can only watch the job states SUCCEEDED, STOPPED, FAILED, TIMEOUT "
                "(got RUNNING)"
            ),
        ),
        (
            [
                {"LogicalOperator": "EQUALS", "CrawlerName": "crawl", "CrawlState": "SUCCEEDED"},
            ],
            "Predicate.Conditions[0].CrawlerName",
            "crawlers are not supported by this service",
        ),
    ],
)
def test_predicate_messages(conditions: list[dict[str, Any]], field: str, message: str) -> None:
    error = refused(check_predicate, {"Conditions": conditions})
    assert error.field == field
    assert_message(error.message, field, message)


def test_the_index_names_the_condition_at_fault() -> None:
    predicate = {"Logical": "AND", "Conditions": [cond("a"), cond("c", state="ERROR")]}
    assert refused(check_predicate, predicate).field == "Predicate.Conditions[1].State"


@pytest.mark.parametrize("state", ["SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT"])
def test_every_watchable_state_passes(state: str) -> None:
    check_predicate({"Conditions": [cond("a", state=state)]})


def test_one_condition_needs_no_logical() -> None:
    check_predicate({"Conditions": [cond("a")]})
    check_predicate({"Logical": "ANY", "Conditions": [cond("a"), cond("c", "FAILED")]})


def test_a_conditional_trigger_may_not_start_a_job_it_watches() -> None:
    definition = trigger(
        "CONDITIONAL",
        Predicate={"Logical": "ANY", "Conditions": [cond("a"), cond("b")]},
        Actions=[{"JobName": "b"}, {"JobName": "c"}],
    )
    error = refused(check_trigger, definition)
    assert error.field == "Actions"
    assert error.message == "Job cannot be a Predicate and Action for Conditional Trigger"


# -- Actions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "field", "message"),
    [
        ([], "Actions", "a trigger needs at least one action"),
        (
            [{"JobName": "a"}, {"JobName": "b", "CrawlerName": "crawl"}],
            "Actions[1]",
            "Both JobName and CrawlerName cannot be set together in an action",
        ),
        ([{"CrawlerName": "crawl"}], "Actions[0].CrawlerName", "crawlers are not supported"),
        ([{"Arguments": {"--day": "1"}}], "Actions[0].JobName", "an action must name a job"),
    ],
)
def test_action_messages(actions: list[dict[str, Any]], field: str, message: str) -> None:
    error = refused(check_actions, actions)
    assert error.field == field
    assert_message(error.message, field, message)


def test_a_missing_actions_member_is_refused_like_an_empty_one() -> None:
    definition = trigger("ON_DEMAND")
    del definition["Actions"]
    assert refused(check_trigger, definition).field == "Actions"


# -- normalisation and the model checks around the rules ------------------------------------------


def test_a_condition_naming_a_job_keeps_only_its_job_fields() -> None:
    both = cond("a", CrawlerName="crawl", CrawlState="FAILED")
    crawler_only = {"LogicalOperator": "EQUALS", "CrawlerName": "crawl", "CrawlState": "FAILED"}
    result = normalized(trigger("CONDITIONAL", Predicate={"Conditions": [both, crawler_only]}))
    assert result["Predicate"]["Conditions"] == [cond("a"), crawler_only]
    # The input is not changed in place.
    assert both["CrawlerName"] == "crawl"


def test_an_empty_predicate_counts_as_absent() -> None:
    assert "Predicate" not in normalized(trigger("ON_DEMAND", Predicate={}))
    check_trigger(normalized(trigger("ON_DEMAND", Predicate={})))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        # Type and WorkflowName are not TriggerUpdate members: the model check refuses them.
        ({"Name": "t", "TriggerUpdate": {"Type": "ON_DEMAND"}}, "TriggerUpdate"),
        ({"Name": "t", "TriggerUpdate": {"WorkflowName": "w"}}, "TriggerUpdate"),
    ],
)
def test_update_cannot_change_type_or_workflow(params: dict[str, Any], field: str) -> None:
    error = refused(validate_request, "UpdateTrigger", params)
    assert (error.field or "").startswith(field), error.field


def test_model_enums_cover_type_logical_operator_and_state() -> None:
    bad_type = {"Name": "t", "Type": "HOURLY", "Actions": [{"JobName": "a"}]}
    assert refused(validate_request, "CreateTrigger", bad_type).field == "Type"
    predicate = {"Conditions": [{"LogicalOperator": "LIKE", "JobName": "a", "State": "FAILED"}]}
    bad_operator = {**trigger("CONDITIONAL"), "Predicate": predicate}
    error = refused(validate_request, "CreateTrigger", bad_operator)
    assert error.field == "Predicate.Conditions[0].LogicalOperator"
