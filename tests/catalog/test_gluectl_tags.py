"""gluectl's tags commands (and the --tag flags of create and list) against the real services.

The ``gluectl`` fixture is tests/catalog/conftest.py's. Tests without the ``stack`` fixture
need no service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest

from clients.glue_client import resource_arn
from clients.gluectl.__main__ import main
from tests.catalog.conftest import UNREACHABLE, Gluectl, Result
from tests.conftest import Stack
from tests.helpers.scripts import SUCCEED, write_script

HEADER = ["Key", "Value"]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A job script that succeeds."""
    return write_script(tmp_path, "ok.py", SUCCEED)


async def _ok(gluectl: Gluectl, *argv: str) -> Result:
    result = await gluectl(*argv)
    assert result.code == 0, (argv, result.err)
    return result


async def _tags(gluectl: Gluectl, *target: str) -> dict[str, Any]:
    tags = (await _ok(gluectl, "-o", "json", "tags", "get", *target)).json()["Tags"]
    assert isinstance(tags, dict)
    return tags


async def test_job_tags_get_add_remove(gluectl: Gluectl, stack: Stack, script: Path) -> None:
    await _ok(
        gluectl, "jobs", "create", "etl", "--script", str(script),
        "--tag", "team=data", "--tag", "env=dev",
    )  # fmt: skip
    await _ok(gluectl, "jobs", "create", "other", "--script", str(script))
    arn = resource_arn("job", "etl")

    shown = await _ok(gluectl, "tags", "get", "--job", "etl")
    assert shown.table() == [HEADER, ["env", "dev"], ["team", "data"]]
    assert await _tags(gluectl, "--job", "other") == {}
    assert (await _ok(gluectl, "tags", "get", "--job", "other")).table() == [HEADER]

    # A key already present gets the new value; an empty value is a value; the last one wins.
    added = await _ok(gluectl, "tags", "add", "--job", "etl", "env=prod", "owner=", "x=1", "x=2")
    assert (added.out, added.err) == (f"{arn}\n", "")
    assert await _tags(gluectl, "--job", "etl") == {
        "env": "prod",
        "owner": "",
        "team": "data",
        "x": "2",
    }
    listed = await _ok(gluectl, "tags", "get", "--job", "etl")
    assert listed.table() == [HEADER, ["env", "prod"], ["owner"], ["team", "data"], ["x", "2"]]

    # Keys the job does not have are ignored.
    removed = await _ok(gluectl, "tags", "remove", "--job", "etl", "owner", "x", "absent")
    assert (removed.out, removed.err) == (f"{arn}\n", "")
    assert await _tags(gluectl, "--job", "etl") == {"env": "prod", "team": "data"}

    # ListJobs' Tags filter sees the change; the definition does not.
    for flags, names in [
        (["--tag", "env=prod"], ["etl"]),
        (["--tag", "env=dev"], []),
        (["--tag", "env=prod", "--tag", "team=data"], ["etl"]),
        ([], ["etl", "other"]),
    ]:
        listing = await _ok(gluectl, "-o", "json", "jobs", "list", *flags)
        assert listing.json() == {"JobNames": names}, flags
    job = (await _ok(gluectl, "-o", "json", "jobs", "get", "etl")).json()["Job"]
    assert "Tags" not in job

    await _ok(gluectl, "tags", "remove", "--job", "etl", "env", "team")
    assert await _tags(gluectl, "--job", "etl") == {}


async def test_trigger_tags_and_the_arn_form(gluectl: Gluectl, stack: Stack, script: Path) -> None:
    await _ok(gluectl, "jobs", "create", "nightly", "--script", str(script), "--tag", "kind=job")
    await _ok(
        gluectl, "triggers", "create", "nightly", "--on-demand", "--action", "nightly",
        "--tag", "team=ops",
    )  # fmt: skip
    await _ok(gluectl, "triggers", "create", "spare", "--on-demand", "--action", "nightly")

    # Any region and account name the same trigger; a job of the same name is another resource.
    arn = "arn:aws:glue:eu-west-1:123456789012:trigger/nightly"
    assert await _tags(gluectl, "--arn", arn) == {"team": "ops"}
    assert await _tags(gluectl, "--trigger", "nightly") == {"team": "ops"}
    assert await _tags(gluectl, "--job", "nightly") == {"kind": "job"}

    # JSON output is the operations' responses: TagResource and UntagResource answer nothing.
    added = await _ok(gluectl, "-o", "json", "tags", "add", "--trigger", "nightly", "env=prod")
    assert added.json() == {}
    added = await _ok(gluectl, "tags", "add", "--arn", arn, "tier=1", "-o", "json")
    assert added.json() == {}
    assert await _tags(gluectl, "--trigger", "nightly") == {
        "env": "prod",
        "team": "ops",
        "tier": "1",
    }
    # The --arn is printed as given.
    removed = await _ok(gluectl, "tags", "remove", "--arn", arn, "tier")
    assert removed.out == f"{arn}\n"
    removed = await _ok(gluectl, "-o", "json", "tags", "remove", "--trigger", "nightly", "team")
    assert removed.json() == {}
    assert await _tags(gluectl, "--arn", arn) == {"env": "prod"}
    assert await _tags(gluectl, "--job", "nightly") == {"kind": "job"}

    for flags, names in [
        (["--tag", "env=prod"], ["nightly"]),
        (["--tag", "team=ops"], []),
        (["--dependent-job", "nightly", "--tag", "env=prod"], ["nightly"]),
    ]:
        listing = await _ok(gluectl, "-o", "json", "triggers", "list", *flags)
        assert listing.json() == {"TriggerNames": names}, flags
    # Tagging is not a change of definition: the trigger is as it was.
    trigger = (await _ok(gluectl, "-o", "json", "triggers", "get", "nightly")).json()["Trigger"]
    assert (trigger["Type"], trigger["State"]) == ("ON_DEMAND", "CREATED")


async def test_missing_resources_and_bad_arns_fail_with_one_line(
    gluectl: Gluectl, stack: Stack
) -> None:
    for kind, word in [("job", "Job"), ("trigger", "Trigger")]:
        for argv in [
            ("tags", "get", f"--{kind}", "nope"),
            ("tags", "add", f"--{kind}", "nope", "a=b"),
            ("tags", "remove", f"--{kind}", "nope", "a"),
            ("-o", "json", "tags", "get", "--arn", f"arn:aws:glue:us-west-2:1:{kind}/nope"),
        ]:
            result = await gluectl(*argv)
            assert (result.code, result.out) == (1, ""), argv
            assert result.err == f"gluectl: EntityNotFoundException: {word} nope not found.\n"

    # The service's words, which name the member (and an untaggable type).
    # Not a Glue ARN at all breaks the model's pattern: AWS's framework wording.
    for arn, reason, message in [
        ("nightly", "ValidationException", "at 'resourceArn'"),
        ("arn:aws:s3:::bucket/key", "ValidationException", "at 'resourceArn'"),
        ("arn:aws:glue:us-east-1:1:crawler/c", "InvalidInputException", "'crawler'"),
    ]:
        for argv in [("get",), ("add", "a=b"), ("remove", "a")]:
            result = await gluectl("tags", argv[0], "--arn", arn, *argv[1:])
            assert (result.code, result.out) == (1, ""), (arn, argv)
            assert result.err.startswith(f"gluectl: {reason}: "), result.err
            assert message in result.err and result.err.count("\n") == 1, result.err


@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
async def test_aws_tools_see_the_same_tags(
    gluectl: Gluectl, stack: Stack, script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The help's AWS tools paragraph: boto3 finds the gateway through AWS_ENDPOINT_URL_GLUE."""
    assert stack.catalog is not None and stack.catalog.http_port
    await _ok(gluectl, "jobs", "create", "etl", "--script", str(script), "--tag", "team=data")
    for name, value in {
        "AWS_ENDPOINT_URL_GLUE": f"http://127.0.0.1:{stack.catalog.http_port}",
        "AWS_ACCESS_KEY_ID": "AKIDANY",
        "AWS_SECRET_ACCESS_KEY": "any",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    client: Any = await asyncio.to_thread(
        boto3.session.Session().client, "glue", region_name="us-east-1"
    )
    try:
        arn = resource_arn("job", "etl")
        got = await asyncio.to_thread(client.get_tags, ResourceArn=arn)
        assert got["Tags"] == {"team": "data"}
        await asyncio.to_thread(client.tag_resource, ResourceArn=arn, TagsToAdd={"env": "prod"})
    finally:
        client.close()
    assert await _tags(gluectl, "--job", "etl") == {"env": "prod", "team": "data"}


# -- without a service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tags"], "required: ACTION"),
        (["tags", "get"], "one of the arguments --job --trigger --arn is required"),
        (["tags", "get", "--job", "a", "--trigger", "b"], "not allowed with argument"),
        (["tags", "get", "--job", "a", "extra"], "unrecognized arguments: extra"),
        (["tags", "add", "--job", "a"], "the following arguments are required: KEY=VALUE"),
        (["tags", "add", "--job", "a", "novalue"], "expected KEY=VALUE, got 'novalue'"),
        (["tags", "add", "--job", "a", "=v"], "expected KEY=VALUE"),
        (["tags", "remove", "--trigger", "t"], "the following arguments are required: KEY"),
        (["tags", "get", "--job", ""], "--job: expected a name, got ''"),
        (["tags", "add", "--trigger", "", "a=b"], "--trigger: expected a name, got ''"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at UNREACHABLE: a 2 (not a 3) shows nothing was sent.
    assert main(["--endpoint", UNREACHABLE, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: gluectl")
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["tags", "get", "--job", "j"],
        ["tags", "add", "--trigger", "t", "a=b"],
        ["tags", "remove", "--arn", "arn:aws:glue:us-east-1:1:job/j", "a"],
    ],
)
def test_unreachable_endpoint_exits_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, *argv]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gluectl: the Glue service at {UNREACHABLE} is unreachable")


def test_help_shows_the_tags_commands_and_the_aws_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "tags" in out and "AWS tools:" in out
    assert "aws glue --endpoint-url http://127.0.0.1:50080 list-jobs" in out
    assert "AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:50080" in out
    assert main(["tags", "add", "--help"]) == 0
    usage = " ".join(capsys.readouterr().out.split())
    assert "(--job NAME | --trigger NAME | --arn ARN) KEY=VALUE [KEY=VALUE ...]" in usage
