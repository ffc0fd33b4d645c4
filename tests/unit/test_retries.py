"""Retry backoff arithmetic, its command-line flags, and the argument-key rule."""

from __future__ import annotations

import pytest

from glue_vocabulary.argument_keys import key_problem, value_problem
from scheduler_service.cli import parse_settings, settings_environment
from scheduler_service.retries import RetryBackoff, retry_backoff
from tests.helpers.processes import service_environment


def test_backoff_starts_at_one_second_doubles_and_stops_at_sixty() -> None:
    backoff = RetryBackoff()
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(0) == 0
    assert backoff.delay(2**31 - 1) == 60  # no overflow for any attempt number


def test_backoff_is_configurable() -> None:
    backoff = RetryBackoff(first_seconds=0.25, max_seconds=1.5)
    assert [backoff.delay(n) for n in range(1, 5)] == [0.25, 0.5, 1.0, 1.5]
    assert RetryBackoff(first_seconds=0).delay(5) == 0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            RetryBackoff(max_seconds=bad)


def test_backoff_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in service_environment().items():
        if name.startswith("SCHEDULER_RUN_AS") or name == "SCHEDULER_SCRIPT_ROOTS":
            monkeypatch.setenv(name, value)  # a root scheduler needs its run identity named
    settings, _level = parse_settings([])
    assert retry_backoff(settings) == RetryBackoff(first_seconds=1.0, max_seconds=60.0)
    settings, _level = parse_settings(["--retry-backoff", "0.5", "--retry-backoff-max", "5"])
    assert retry_backoff(settings) == RetryBackoff(first_seconds=0.5, max_seconds=5.0)
    # A caretaker child reads the same settings back from its environment.
    for name, value in settings_environment(settings, "INFO").items():
        if name.startswith("SCHEDULER_RETRY"):
            monkeypatch.setenv(name, value)
    again, _level = parse_settings([])
    assert retry_backoff(again) == RetryBackoff(first_seconds=0.5, max_seconds=5.0)
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(SystemExit):
            parse_settings(["--retry-backoff-max", bad])


@pytest.mark.parametrize(
    "key",
    ["--JOB_NAME", "--JOB_N", "--J", "--JOB", "--JOB_", "--JOB_R", "--JOB_RUN_ID", "--JOB_I",
     "--JOB_ID", "JOB_N", "J", "--JOB_N=x", "--a=b", "a=b"],
)  # fmt: skip
def test_keys_argparse_would_take_for_a_reserved_option_are_refused(key: str) -> None:
    assert key_problem(key) is not None


@pytest.mark.parametrize(
    "key",
    ["--day", "day", "--job-bookmark-option", "--TempDir", "--JOB_NAMES", "--JOB_IDX", "-JOB_N",
     "--SECURITY_CONFIGURATION", "--enable-metrics", "--x y"],
)  # fmt: skip
def test_other_keys_are_allowed(key: str) -> None:
    assert key_problem(key) is None


def test_values_that_read_as_a_reserved_option_are_refused() -> None:
    for value in ("--JOB_NAME=evil", "--JOB_N=evil", "--JOB_R", "--JOB_ID"):
        assert value_problem(value) is not None, value
    for value in ("evil", "JOB_NAME=x", "-JOB_N", "--day=1", "--", "", "a --JOB_NAME=x"):
        assert value_problem(value) is None, value
