"""GetJobBookmark and ResetJobBookmark through the HTTP gateway, as boto3 parses them.

Commits are made as a settling run makes them (``tests.helpers.bookmarks.commit``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gateway.conftest import ROLE, Aws
from tests.helpers.bookmarks import commit
from tests.helpers.scripts import SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

R1, R2 = (f"jr_{n:064x}" for n in range(1, 3))
STATE_1 = json.dumps({"datasource0": {"offset": 1}})
STATE_2 = json.dumps({"datasource0": {"offset": 2}})


@pytest.fixture
async def job(aws: Aws, tmp_path: Path) -> str:
    """A job named ``etl``, created through boto3."""
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws(
        "create_job",
        Name="etl",
        Role=ROLE,
        Command={"Name": "pythonshell", "ScriptLocation": str(script)},
    )
    return "etl"


async def test_get_and_reset_shapes(aws: Aws, job: str) -> None:
    await commit(aws.stack, job, R1, STATE_1)
    await commit(aws.stack, job, R2, STATE_2, attempt=1, previous_run_id=R1)

    got = await aws("get_job_bookmark", JobName=job)
    assert got["JobBookmarkEntry"] == {
        "JobName": "etl",
        "Version": 2,
        "Run": 2,
        "Attempt": 1,
        "PreviousRunId": R1,
        "RunId": R2,
        "JobBookmark": STATE_2,
    }
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    by_run = await aws("get_job_bookmark", JobName=job, RunId=R1)
    assert by_run["JobBookmarkEntry"] == {
        "JobName": "etl",
        "Version": 1,
        "Run": 1,
        "Attempt": 0,
        "RunId": R1,
        "JobBookmark": STATE_1,
    }

    rewound = await aws("reset_job_bookmark", JobName=job, RunId=R2)
    assert rewound["JobBookmarkEntry"] == {
        "JobName": "etl",
        "Version": 3,
        "Run": 2,
        "Attempt": 1,
        "PreviousRunId": R1,
        "RunId": R2,
        "JobBookmark": STATE_1,
    }
    # A reset to the beginning leaves no JobBookmark member at all.
    cleared = (await aws("reset_job_bookmark", JobName=job))["JobBookmarkEntry"]
    assert "JobBookmark" not in cleared
    assert (cleared["Version"], cleared["Run"], cleared["RunId"]) == (4, 2, R2)
    assert (await aws("get_job_bookmark", JobName=job))["JobBookmarkEntry"] == cleared


async def test_errors(aws: Aws, job: str) -> None:
    for operation in ("get_job_bookmark", "reset_job_bookmark"):
        code, message, status = await aws.error(operation, JobName="nope")
        assert (code, message, status) == ("EntityNotFoundException", "Job nope not found.", 400)
        code, message, status = await aws.error(operation, JobName=job)
        assert (code, status) == ("EntityNotFoundException", 400)
        assert message == "Job etl has no job bookmark: none of its runs has committed one."
        # botocore sends any string (the model sets no limits); the service refuses it.
        code, message, status = await aws.error(operation, JobName="x" * 300)
        assert (code, status) == ("InvalidInputException", 400)
        assert message == "JobName: must be at most 255 characters long (got 300)"
    await commit(aws.stack, job, R1, STATE_1)
    code, message, _ = await aws.error("reset_job_bookmark", JobName=job, RunId="jr_nope")
    assert code == "EntityNotFoundException"
    assert message == "Job run jr_nope of job etl has committed no job bookmark."
    with pytest.raises(aws.client.exceptions.EntityNotFoundException):
        await aws("get_job_bookmark", JobName=job, RunId="jr_nope")
