"""IAM policy documents: parsing refuses what cannot be honoured; evaluation follows IAM."""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.access.policy import parse_policy

JOB_A = "arn:aws:glue:us-east-1:000000000000:job/team-a-load"
JOB_B = "arn:aws:glue:us-east-1:000000000000:job/team-b-load"
TRIGGER_A = "arn:aws:glue:us-east-1:000000000000:trigger/team-a-nightly"


def policy(*statements: dict[str, Any]) -> Any:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, "test")


def allow(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def test_no_matching_allow_refuses() -> None:
    p = policy(allow("glue:GetJob"))
    assert p.allows("glue:GetJob", JOB_A)
    assert not p.allows("glue:StartJobRun", JOB_A)


def test_resource_wildcards_match_across_separators() -> None:
    p = policy(allow("glue:*", "arn:aws:glue:*:*:job/team-a-*"))
    assert p.allows("glue:StartJobRun", JOB_A)
    assert not p.allows("glue:StartJobRun", JOB_B)
    assert not p.allows("glue:StartJobRun", TRIGGER_A)


def test_question_mark_is_one_character() -> None:
    p = policy(allow("glue:Get?ob", "*"))
    assert p.allows("glue:GetJob", JOB_A)
    assert not p.allows("glue:GetJobs", JOB_A)


def test_actions_ignore_case_resources_do_not() -> None:
    p = policy(allow("GLUE:startjobrun", "arn:aws:glue:*:*:job/team-a-*"))
    assert p.allows("glue:StartJobRun", JOB_A)
    assert not p.allows("glue:StartJobRun", JOB_A.replace("team-a", "TEAM-A"))


def test_explicit_deny_wins_in_any_order() -> None:
    for statements in (
        (allow("glue:*"), deny("glue:DeleteJob", JOB_A)),
        (deny("glue:DeleteJob", JOB_A), allow("glue:*")),
    ):
        p = policy(*statements)
        assert not p.allows("glue:DeleteJob", JOB_A)
        assert p.allows("glue:DeleteJob", JOB_B)


def test_lists_of_actions_and_resources() -> None:
    p = policy(allow(["glue:GetJob", "glue:GetJobRun*"], [JOB_A, TRIGGER_A]))
    assert p.allows("glue:GetJobRuns", JOB_A)
    assert p.allows("glue:GetJob", TRIGGER_A)
    assert not p.allows("glue:GetJob", JOB_B)


def test_not_action_and_not_resource() -> None:
    p = policy(
        {"Effect": "Allow", "NotAction": "glue:Delete*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:glue:*:*:job/team-a-*"},
    )
    assert p.allows("glue:StartJobRun", JOB_A)
    assert not p.allows("glue:DeleteJob", JOB_A)
    assert not p.allows("glue:GetJob", JOB_B)


def test_single_statement_object_is_accepted() -> None:
    p = parse_policy({"Version": "2012-10-17", "Statement": allow("glue:Get*")}, "test")
    assert p.allows("glue:GetJob", JOB_A)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"Statement": [allow("glue:*")]}, "Version"),
        ({"Version": "2012-10-17", "Statement": []}, "Statement"),
        (
            {"Version": "2012-10-17", "Statement": [{**allow("glue:*"), "Condition": {}}]},
            "Condition",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}],
            },
            "Effect",
        ),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
        ({"Version": "2012-10-17", "Statement": [{**allow("*"), "NotAction": "x"}]}, "exactly one"),
        ({"Version": "2012-10-17", "Statement": [allow([])]}, "Action"),
        ({"Version": "2012-10-17", "Statement": [allow("*", "arn:${aws:username}")]}, "variables"),
        ({"Version": "2012-10-17", "Statement": [allow("*")], "Extra": 1}, "Extra"),
        ("Allow everything", "JSON object"),
    ],
)
def test_documents_that_cannot_be_honoured_are_refused(document: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_policy(document, "keys[0].policy")
