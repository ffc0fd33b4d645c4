"""getResolvedOptions behaves like AWS Glue's ``awsglue.utils.getResolvedOptions``."""

from __future__ import annotations

import pytest

from clients.job_args import GlueArgumentError, get_resolved_options, getResolvedOptions

SCRIPT = "job.py"


def test_resolves_requested_options_in_both_forms_and_ignores_the_rest() -> None:
    args = getResolvedOptions(
        [SCRIPT, "--JOB_NAME", "nightly", "--JOB_RUN_ID", "jr_1", "--day=2024-01-02",
         "--unknown", "x", "--region", "eu-west-1"],
        ["JOB_NAME", "day", "region"],
    )  # fmt: skip
    assert args["JOB_NAME"] == "nightly"
    assert args["day"] == "2024-01-02"
    assert args["region"] == "eu-west-1"
    assert "unknown" not in args


def test_always_returns_glue_reserved_options() -> None:
    args = getResolvedOptions([SCRIPT, "--JOB_RUN_ID", "jr_1"], [])
    assert args == {
        "job_bookmark_option": "job-bookmark-disable",
        "job_bookmark_from": None,
        "job_bookmark_to": None,
        "JOB_ID": None,
        "JOB_RUN_ID": "jr_1",
        "SECURITY_CONFIGURATION": None,
        "encryption_type": None,
        "RedshiftTempDir": None,
        "TempDir": None,
    }


def test_job_name_only_when_asked_for() -> None:
    assert "JOB_NAME" not in getResolvedOptions([SCRIPT, "--JOB_NAME", "j"], [])


def test_missing_required_option_raises() -> None:
    with pytest.raises(GlueArgumentError, match="required: --JOB_NAME"):
        getResolvedOptions([SCRIPT, "--other", "1"], ["JOB_NAME"])


def test_the_first_argument_is_the_script_and_is_skipped() -> None:
    with pytest.raises(GlueArgumentError):
        getResolvedOptions(["--day", "1"], ["day"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("JOB_RUN_ID", "Using reserved arguments --JOB_RUN_ID"),
        ("JOB_ID", "Using reserved arguments --JOB_ID"),
        ("job-bookmark-option", "Using reserved arguments job-bookmark-option"),
        ("continuation-option", "Using reserved arguments continuation-option"),
        ("job-bookmark-from", "Using reserved arguments --job-bookmark-from"),
        ("encryption-type", "Using reserved arguments --encryption-type"),
    ],
)
def test_reserved_options_cannot_be_requested(option: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        getResolvedOptions([SCRIPT], [option])


def test_hyphenated_names_become_underscored_keys() -> None:
    args = getResolvedOptions([SCRIPT, "--input-path", "/data"], ["input-path"])
    assert args["input_path"] == "/data"


def test_value_starting_with_a_dash_needs_the_equals_form() -> None:
    assert getResolvedOptions([SCRIPT, "--offset=-5x"], ["offset"])["offset"] == "-5x"
    with pytest.raises(GlueArgumentError):
        getResolvedOptions([SCRIPT, "--offset", "-5x"], ["offset"])


def test_temp_dirs_mirror_each_other() -> None:
    args = getResolvedOptions([SCRIPT, "--TempDir", "/tmp/a"], ["TempDir"])
    assert args["TempDir"] == args["RedshiftTempDir"] == "/tmp/a"
    args = getResolvedOptions([SCRIPT, "--RedshiftTempDir", "/tmp/b"], [])
    assert args["TempDir"] == "/tmp/b"
    # Asking for TempDir does not make it required.
    assert getResolvedOptions([SCRIPT], ["TempDir"])["TempDir"] is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--job-bookmark-option", "job-bookmark-enable"], "job-bookmark-enable"),
        (["--continuation-option", "continuation-enabled"], "job-bookmark-enable"),
        (["--continuation-option", "continuation-readonly"], "job-bookmark-pause"),
        (["--continuation-option", "continuation-ignore"], "job-bookmark-disable"),
        (
            ["--job-bookmark-option", "job-bookmark-disable",
             "--continuation-option", "continuation-enabled"],
            "job-bookmark-disable",
        ),
    ],
)  # fmt: skip
def test_job_bookmark_option(argv: list[str], expected: str) -> None:
    args = getResolvedOptions([SCRIPT, *argv], [])
    assert args["job_bookmark_option"] == expected
    assert "continuation_option" not in args


def test_job_bookmark_option_must_be_a_known_value() -> None:
    with pytest.raises(GlueArgumentError, match="invalid choice"):
        getResolvedOptions([SCRIPT, "--job-bookmark-option", "sometimes"], [])


def test_job_bookmark_range_fits_the_bookmark_option() -> None:
    pause = [SCRIPT, "--job-bookmark-option", "job-bookmark-pause"]
    args = getResolvedOptions([*pause, "--job-bookmark-from", "a", "--job-bookmark-to", "b"], [])
    assert (args["job_bookmark_from"], args["job_bookmark_to"]) == ("a", "b")
    assert getResolvedOptions(pause, [])["job_bookmark_from"] is None
    with pytest.raises(RuntimeError, match="Missing option or value for --job-bookmark-to"):
        getResolvedOptions([*pause, "--job-bookmark-from", "a"], [])
    with pytest.raises(RuntimeError, match="Invalid option"):
        getResolvedOptions([SCRIPT, "--job-bookmark-from", "a", "--job-bookmark-to", "b"], [])


def test_snake_case_alias() -> None:
    assert get_resolved_options is getResolvedOptions
