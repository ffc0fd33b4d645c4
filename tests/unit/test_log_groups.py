"""Glue's log group names per job type (glue_vocabulary.log_groups)."""

from __future__ import annotations

from glue_vocabulary import log_groups


def test_each_job_type_gets_the_group_prefix_aws_returns() -> None:
    assert log_groups.group_prefix("glueetl") == "/aws-glue/jobs"
    assert log_groups.group_prefix("gluestreaming") == "/aws-glue/jobs"
    assert log_groups.group_prefix("pythonshell") == "/aws-glue/python-jobs"
    # A run whose job is gone (an ERROR run of a trigger) gets Spark's, Glue's default.
    assert log_groups.group_prefix(None) == "/aws-glue/jobs"


def test_stdout_goes_to_output_and_stderr_to_error() -> None:
    assert log_groups.log_groups() == {
        "/aws-glue/jobs/output": ("/aws-glue/jobs", "stdout"),
        "/aws-glue/jobs/error": ("/aws-glue/jobs", "stderr"),
        "/aws-glue/python-jobs/output": ("/aws-glue/python-jobs", "stdout"),
        "/aws-glue/python-jobs/error": ("/aws-glue/python-jobs", "stderr"),
    }
