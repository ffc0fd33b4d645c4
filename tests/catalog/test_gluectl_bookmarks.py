"""gluectl's bookmarks commands against the real services.

Commits are made as a settling run makes them (``tests.helpers.bookmarks.commit``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.catalog.conftest import Gluectl, Result
from tests.conftest import Stack
from tests.helpers.bookmarks import commit
from tests.helpers.scripts import SUCCEED, write_script

R1, R2 = (f"jr_{n:064x}" for n in range(1, 3))
STATE_1 = json.dumps({"datasource0": {"offset": 1}})
STATE_2 = json.dumps({"datasource0": {"offset": 2}})


async def _ok(gluectl: Gluectl, *argv: str) -> Result:
    result = await gluectl(*argv)
    assert result.code == 0, (argv, result.err)
    return result


async def test_bookmarks_get_and_reset(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await _ok(gluectl, "jobs", "create", "etl", "--script", str(script))
    await commit(stack, "etl", R1, STATE_1)
    await commit(stack, "etl", R2, STATE_2, attempt=1, previous_run_id=R1)

    shown = await _ok(gluectl, "bookmarks", "get", "etl")
    assert shown.table() == [
        ["JobName", "etl"],
        ["Version", "2"],
        ["Run", "2"],
        ["Attempt", "1"],
        ["PreviousRunId", R1],
        ["RunId", R2],
        ["JobBookmark", STATE_2],
    ]
    as_json = (await _ok(gluectl, "-o", "json", "bookmarks", "get", "etl", "--run-id", R1)).json()
    assert as_json == {
        "JobBookmarkEntry": {
            "JobName": "etl",
            "Version": 1,
            "Run": 1,
            "Attempt": 0,
            "RunId": R1,
            "JobBookmark": STATE_1,
        }
    }

    rewound = (await _ok(gluectl, "bookmarks", "reset", "etl", "--run-id", R2, "-o", "json")).json()
    assert rewound["JobBookmarkEntry"]["Version"] == 3
    assert rewound["JobBookmarkEntry"]["JobBookmark"] == STATE_1

    cleared = await _ok(gluectl, "bookmarks", "reset", "etl")
    assert ["Version", "4"] in cleared.table()
    assert [
        "JobBookmark",
        "- (none: the next run starts from the beginning)",
    ] in cleared.table()
    as_json = (await _ok(gluectl, "-o", "json", "bookmarks", "get", "etl")).json()
    assert "JobBookmark" not in as_json["JobBookmarkEntry"]


async def test_bookmarks_errors(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    failed = await gluectl("bookmarks", "get", "nope")
    assert (failed.code, failed.out) == (1, "")
    assert failed.err == "gluectl: EntityNotFoundException: Job nope not found.\n"

    await _ok(gluectl, "jobs", "create", "etl", "--script", str(tmp_path / "x.py"))
    failed = await gluectl("bookmarks", "reset", "etl")
    assert failed.code == 1
    assert "EntityNotFoundException: Job etl has no job bookmark" in failed.err

    await commit(stack, "etl", R1, STATE_1)
    failed = await gluectl("bookmarks", "reset", "etl", "--run-id", "jr_nope")
    assert failed.code == 1
    assert failed.err == (
        "gluectl: EntityNotFoundException: Job run jr_nope of job etl has committed no job "
        "bookmark.\n"
    )
    usage = await gluectl("bookmarks", "get")
    assert usage.code == 2
