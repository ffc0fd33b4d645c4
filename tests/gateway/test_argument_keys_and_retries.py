"""Reserved argument keys and the MaxRetries cap through boto3, on SQLite and PostgreSQL.

Each refusal is a 400 InvalidInputException naming the field and the key, and leaves the job,
its runs and the trigger as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.conftest import ROLE, Aws
from tests.helpers.scripts import SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
IIE = "InvalidInputException"


def command(script: Path) -> dict[str, str]:
    return {"Name": "pythonshell", "ScriptLocation": str(script)}


async def test_reserved_argument_keys_are_refused(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)

    code, message, status = await aws.error(
        "create_job",
        Name="j",
        Role=ROLE,
        Command=command(script),
        DefaultArguments={"--JOB_N": "evil"},
    )
    assert (code, status) == (IIE, 400)
    assert message.startswith('DefaultArguments["--JOB_N"]: ') and "argparse" in message
    code, message, _ = await aws.error(
        "create_job",
        Name="j",
        Role=ROLE,
        Command=command(script),
        NonOverridableArguments={"--a=b": "x"},
    )
    assert code == IIE and message.startswith('NonOverridableArguments["--a=b"]: ')
    assert (await aws("list_jobs"))["JobNames"] == []

    await aws("create_job", Name="j", Role=ROLE, Command=command(script))
    before = (await aws("get_job", JobName="j"))["Job"]
    for member, key in [("DefaultArguments", "--JOB"), ("NonOverridableArguments", "JOB_RUN_I")]:
        code, message, _ = await aws.error(
            "update_job",
            JobName="j",
            JobUpdate={"Role": ROLE, "Command": command(script), member: {key: "evil"}},
        )
        assert code == IIE and message.startswith(f'JobUpdate.{member}["{key}"]: '), message
    assert (await aws("get_job", JobName="j"))["Job"] == before

    for arguments, key in [({"--JOB_ID": "x"}, "--JOB_ID"), ({"--u": "--JOB_N=x"}, "--u")]:
        code, message, _ = await aws.error("start_job_run", JobName="j", Arguments=arguments)
        assert code == IIE and message.startswith(f'Arguments["{key}"]: '), message
    assert (await aws("get_job_runs", JobName="j"))["JobRuns"] == []

    code, message, _ = await aws.error(
        "create_trigger",
        Name="t",
        Type="ON_DEMAND",
        Actions=[{"JobName": "j", "Arguments": {"--JOB_NAME": "evil"}}],
    )
    assert code == IIE and message.startswith('Actions[0].Arguments["--JOB_NAME"]: '), message
    assert (await aws("list_triggers"))["TriggerNames"] == []
    await aws("create_trigger", Name="t", Type="ON_DEMAND", Actions=[{"JobName": "j"}])
    trigger = (await aws("get_trigger", Name="t"))["Trigger"]
    code, message, _ = await aws.error(
        "update_trigger",
        Name="t",
        TriggerUpdate={"Actions": [{"JobName": "j", "Arguments": {"--JOB_R": "jr_x"}}]},
    )
    assert code == IIE
    assert message.startswith('TriggerUpdate.Actions[0].Arguments["--JOB_R"]: '), message
    assert (await aws("get_trigger", Name="t"))["Trigger"] == trigger


async def test_max_retries_above_the_cap_is_refused(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    code, message, status = await aws.error(
        "create_job", Name="j", Role=ROLE, Command=command(script), MaxRetries=11
    )
    assert (code, status) == (IIE, 400)
    assert message.startswith("MaxRetries: must be at most 10"), message
    assert (await aws("list_jobs"))["JobNames"] == []

    await aws("create_job", Name="j", Role=ROLE, Command=command(script), MaxRetries=10)
    code, message, _ = await aws.error(
        "update_job",
        JobName="j",
        JobUpdate={"Role": ROLE, "Command": command(script), "MaxRetries": 2**31 - 1},
    )
    assert code == IIE and message.startswith("JobUpdate.MaxRetries: must be at most 10")
    assert (await aws("get_job", JobName="j"))["Job"]["MaxRetries"] == 10
