"""Unit tests for catalog_service.tags.resource_of: which ARNs name a job or trigger."""

from __future__ import annotations

import pytest

from catalog_service import tags
from catalog_service.validation.model import glue_model
from servicekit.errors import InvalidInputException

NAME_ERROR = "ResourceArn: the resource name must be a single line with no control characters"


def arn(kind: str, name: str) -> str:
    return f"arn:aws:glue:eu-west-1:123456789012:{kind}/{name}"


def test_the_name_rule_is_the_model_rule_of_job_and_trigger_names() -> None:
    for operation in ("CreateJob", "CreateTrigger"):
        shape = glue_model().operation_model(operation).input_shape
        assert shape is not None
        assert shape.members["Name"].name == tags._NAME_SHAPE  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    [
        "nightly",
        "x" * 255,
        "with\ttab",  # a job name may hold a tab, so an ARN may name it
        "\U0001f600 and ü",
        "a/b:c",
    ],
)
def test_names_a_job_or_trigger_may_have(name: str) -> None:
    assert tags.resource_of(arn("job", name)) == (tags.jobs, "Job", name)
    assert tags.resource_of(arn("trigger", name)) == (tags.triggers, "Trigger", name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 256, "ResourceArn: the resource name must be at most 255 characters long (got 256)"),
        ("a\x00", NAME_ERROR),
        ("a\nb", NAME_ERROR),
        ("a\rb", NAME_ERROR),
        ("\ufffe", NAME_ERROR),
    ],
)
def test_names_no_job_or_trigger_can_have_are_refused(name: str, message: str) -> None:
    for kind in ("job", "trigger"):
        with pytest.raises(InvalidInputException) as caught:
            tags.resource_of(arn(kind, name))
        assert (str(caught.value), caught.value.field) == (message, "ResourceArn")


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        ("nightly", "ResourceArn: expected arn:aws:glue:"),
        (arn("job", ""), "ResourceArn: expected arn:aws:glue:"),
        (arn("crawler", "c\x00"), "ResourceArn: resource type 'crawler' cannot be tagged here"),
    ],
)
def test_other_arns_are_refused(value: str, wanted: str) -> None:
    with pytest.raises(InvalidInputException) as caught:
        tags.resource_of(value)
    assert str(caught.value).startswith(wanted)
    assert caught.value.field == "ResourceArn"
