"""gluectl's trigger commands against the real services, and GlueClient's trigger methods.

``main`` runs ``asyncio.run`` itself, so it is called in a worker thread (the test's loop runs
the services), as in test_gluectl.py. Tests without the ``stack`` fixture need no service.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clients.glue_client import GlueClient
from clients.gluectl.__main__ import main
from clients.gluectl.output import short_run_id
from tests.catalog.conftest import RUN_ID, UNREACHABLE, Gluectl, Result
from tests.conftest import TERMINAL, Stack
from tests.helpers.scripts import ECHO_ARGS, SUCCEED, write_script


@pytest.fixture
async def jobs(stack: Stack, tmp_path: Path) -> list[str]:
    """Jobs extract, load and report; extract echoes its arguments."""
    await stack.create_job("extract", write_script(tmp_path, "extract.py", ECHO_ARGS))
    ok = write_script(tmp_path, "ok.py", SUCCEED)
    await stack.create_job("load", ok)
    await stack.create_job("report", ok)
    return ["extract", "load", "report"]


async def _trigger(gluectl: Gluectl, name: str) -> dict[str, Any]:
    result = await gluectl("-o", "json", "triggers", "get", name)
    assert result.code == 0, result.err
    trigger = result.json()["Trigger"]
    assert isinstance(trigger, dict)
    return trigger


async def _ok(gluectl: Gluectl, *argv: str) -> Result:
    result = await gluectl(*argv)
    assert result.code == 0, (argv, result.err)
    return result


async def _runs_of(gluectl: Gluectl, job: str, count: int, timeout: float = 20.0) -> list[Any]:
    """`runs list JOB -o json` once it shows ``count`` runs, all ended (newest first)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = (await _ok(gluectl, "-o", "json", "runs", "list", job)).json()["JobRuns"]
        if len(runs) >= count and all(r["JobRunState"] in TERMINAL for r in runs):
            return list(runs)
        if time.monotonic() > deadline:
            raise AssertionError(f"{job}: {[(r['Id'], r['JobRunState']) for r in runs]}")
        await asyncio.sleep(0.1)


# -- create, list, get -----------------------------------------------------------------------


async def test_create_each_kind_list_and_get(
    gluectl: Gluectl, stack: Stack, jobs: list[str]
) -> None:
    created = await gluectl(
        "triggers", "create", "nightly", "--schedule", "cron(0 2 * * ? *)",
        "--action", "extract", "--description", "nightly load", "--tag", "team=data",
    )  # fmt: skip
    assert (created.code, created.out, created.err) == (0, "nightly\n", "")
    await _ok(
        gluectl, "triggers", "create", "kick", "--on-demand", "--action", "extract",
        "--action", "load", "--action-arg", "extract:day=mon", "--action-arg=load:--mode=a:b=c",
        "--action-timeout", "load:7",
    )  # fmt: skip
    as_json = await gluectl(
        "-o", "json", "triggers", "create", "chain", "--when",
        "extract=SUCCEEDED AND load=succeeded", "--action", "report", "--start",
    )  # fmt: skip
    assert (as_json.code, as_json.json()) == (0, {"Name": "chain"})
    await _ok(
        gluectl, "triggers", "create", "alarm", "--when", "extract=FAILED or load=timeout",
        "--action", "report", "--tag", "team=ops",
    )  # fmt: skip

    nightly = await _trigger(gluectl, "nightly")
    assert nightly["Name"] == "nightly"
    assert (nightly["Type"], nightly["State"]) == ("SCHEDULED", "CREATED")
    assert nightly["Schedule"] == "cron(0 2 * * ? *)"
    assert nightly["Actions"] == [{"JobName": "extract"}]
    assert nightly["Description"] == "nightly load"

    kick = await _trigger(gluectl, "kick")
    assert (kick["Type"], kick["State"]) == ("ON_DEMAND", "CREATED")
    assert "Schedule" not in kick and "Predicate" not in kick
    assert kick["Actions"] == [
        {"JobName": "extract", "Arguments": {"--day": "mon"}},
        {"JobName": "load", "Arguments": {"--mode": "a:b=c"}, "Timeout": 7},
    ]

    chain = await _trigger(gluectl, "chain")
    assert (chain["Type"], chain["State"]) == ("CONDITIONAL", "ACTIVATED")  # --start
    assert chain["Predicate"] == {
        "Logical": "AND",
        "Conditions": [
            {"LogicalOperator": "EQUALS", "JobName": "extract", "State": "SUCCEEDED"},
            {"LogicalOperator": "EQUALS", "JobName": "load", "State": "SUCCEEDED"},
        ],
    }
    alarm = await _trigger(gluectl, "alarm")
    assert alarm["State"] == "CREATED"
    assert alarm["Predicate"]["Logical"] == "ANY"
    assert [c["State"] for c in alarm["Predicate"]["Conditions"]] == ["FAILED", "TIMEOUT"]

    details = await _ok(gluectl, "triggers", "get", "nightly")
    assert re.search(r"^Schedule +cron\(0 2 \* \* \? \*\)$", details.out, re.MULTILINE)
    assert re.search(r"^State +CREATED$", details.out, re.MULTILINE)
    assert re.search(r'^Actions +\{"JobName": "extract"\}$', details.out, re.MULTILINE)

    # -o json: ListTriggers' names; -o is accepted after the command too.
    listed = await _ok(gluectl, "triggers", "list", "-o", "json")
    assert listed.json() == {"TriggerNames": ["alarm", "chain", "kick", "nightly"]}
    for argv, names in [
        (["--tag", "team=data"], ["nightly"]),
        (["--tag", "team=nobody"], []),
        (["--dependent-job", "load"], ["kick"]),
        (["--dependent-job", "report"], ["alarm", "chain"]),
        (["--dependent-job", "report", "--tag", "team=ops"], ["alarm"]),
    ]:
        filtered = await _ok(gluectl, "-o", "json", "triggers", "list", *argv)
        assert filtered.json() == {"TriggerNames": names}, argv

    table = (await _ok(gluectl, "triggers", "list")).table()
    assert table == [
        ["Name", "Type", "State", "When", "Next (UTC)", "Actions"],
        ["alarm", "CONDITIONAL", "CREATED", "extract=FAILED or load=TIMEOUT", "-", "report"],
        [
            "chain",
            "CONDITIONAL",
            "ACTIVATED",
            "extract=SUCCEEDED and load=SUCCEEDED",
            "-",
            "report",
        ],
        ["kick", "ON_DEMAND", "CREATED", "-", "-", "extract,load"],
        ["nightly", "SCHEDULED", "CREATED", "cron(0 2 * * ? *)", "-", "extract"],
    ]
    assert re.search(r"^NextFireTime +-$", details.out, re.MULTILINE)  # not activated

    # Once activated, a schedule has a next fire time: the coming 02:00 UTC.
    await _ok(gluectl, "triggers", "start", "nightly")
    before = datetime.now(UTC)
    row = [r for r in (await _ok(gluectl, "triggers", "list")).table() if r[0] == "nightly"]
    next_fire = datetime.fromisoformat(row[0][4]).replace(tzinfo=UTC)
    assert (next_fire.hour, next_fire.minute, next_fire.second) == (2, 0, 0)
    assert timedelta(0) < next_fire - before <= timedelta(days=1)
    details = await _ok(gluectl, "triggers", "get", "nightly")
    assert re.search(rf"^NextFireTime +{row[0][4]} UTC$", details.out, re.MULTILINE)
    only = (await _ok(gluectl, "triggers", "list", "--dependent-job", "load")).table()
    assert [row[0] for row in only] == ["Name", "kick"]


async def test_create_from_json(
    gluectl: Gluectl, stack: Stack, jobs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `aws glue create-trigger --cli-input-json` takes it.
    request = {
        "Name": "ignored",
        "Type": "SCHEDULED",
        "Schedule": "cron(15 3 ? * MON-FRI *)",
        "Actions": [{"JobName": "extract", "Arguments": {"--day": "fri"}}],
        "Description": "from a file",
        "StartOnCreation": True,
        "Tags": {"team": "data"},
    }
    source = tmp_path / "trigger.json"
    source.write_text(json.dumps(request))
    created = await gluectl(
        "triggers", "create", "filed", "--from-json", str(source),
        "--action-timeout", "extract:3", "--tag", "env=prod",
    )  # fmt: skip
    assert (created.code, created.out) == (0, "filed\n"), created.err
    filed = await _trigger(gluectl, "filed")
    assert (filed["Type"], filed["State"]) == ("SCHEDULED", "ACTIVATED")
    assert filed["Schedule"] == request["Schedule"]
    assert filed["Description"] == "from a file"
    assert filed["Actions"] == [{"JobName": "extract", "Arguments": {"--day": "fri"}, "Timeout": 3}]
    tagged = await _ok(gluectl, "-o", "json", "triggers", "list", "--tag", "env=prod")
    assert tagged.json() == {"TriggerNames": ["filed"]}

    # A type flag replaces the file's type and what belongs to it; --action replaces Actions.
    switched = await gluectl(
        "triggers", "create", "switched", "--from-json", str(source), "--when",
        "extract=STOPPED", "--action", "report",
    )  # fmt: skip
    assert switched.code == 0, switched.err
    trigger = await _trigger(gluectl, "switched")
    assert trigger["Type"] == "CONDITIONAL" and "Schedule" not in trigger
    assert trigger["Actions"] == [{"JobName": "report"}]

    # A `triggers get` document, from stdin, clones a trigger (it starts CREATED).
    dump = await _ok(gluectl, "-o", "json", "triggers", "get", "filed")
    monkeypatch.setattr("sys.stdin", io.StringIO(dump.out))
    await _ok(gluectl, "triggers", "create", "clone", "--from-json", "-")
    clone = await _trigger(gluectl, "clone")
    assert clone["State"] == "CREATED"
    for member in ("Type", "Schedule", "Actions", "Description"):
        assert clone[member] == filed[member], member

    # EVENT triggers only come from a file: stored, and never started (as in Glue).
    event = {
        "Type": "EVENT",
        "Actions": [{"JobName": "load"}],
        "EventBatchingCondition": {"BatchSize": 5, "BatchWindow": 60},
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    await _ok(gluectl, "triggers", "create", "evt", "--from-json", str(tmp_path / "event.json"))
    stored = await _trigger(gluectl, "evt")
    assert stored["EventBatchingCondition"] == {"BatchSize": 5, "BatchWindow": 60}
    refused = await gluectl("triggers", "start", "evt")
    assert refused.code == 1
    assert refused.err.startswith("gluectl: InvalidInputException: ")
    assert "EVENT cannot be started" in refused.err and refused.err.count("\n") == 1
    row = [r for r in (await _ok(gluectl, "triggers", "list")).table() if r[0] == "evt"]
    assert row == [["evt", "EVENT", "CREATED", "-", "-", "load"]]

    # Unusable files are usage errors, caught before anything is sent.
    (tmp_path / "typo.json").write_text(json.dumps({**request, "Shedule": "x"}))
    (tmp_path / "type.json").write_text(json.dumps({**request, "StartOnCreation": "yes"}))
    (tmp_path / "list.json").write_text("[]")
    for argv, message in [
        (["--from-json", str(tmp_path / "typo.json")], "no member 'Shedule'"),
        (["--from-json", str(tmp_path / "type.json")], "CreateTriggerRequest.StartOnCreation"),
        (["--from-json", str(tmp_path / "list.json")], "must hold a JSON object"),
        (["--from-json", str(tmp_path / "missing.json")], "cannot read"),
    ]:
        result = await gluectl("triggers", "create", "never", *argv)
        assert result.code == 2, (argv, result.err)
        assert message in result.err and result.err.startswith("usage: gluectl triggers create")
    assert (await gluectl("triggers", "get", "never")).code == 1


# -- start, stop, update, delete -------------------------------------------------------------


async def test_start_stop_update_delete(
    gluectl: Gluectl, stack: Stack, jobs: list[str], tmp_path: Path
) -> None:
    await _ok(
        gluectl, "triggers", "create", "nightly", "--schedule", "cron(0 2 * * ? *)",
        "--action", "extract", "--description", "old",
    )  # fmt: skip
    # StopTrigger on a CREATED trigger is Glue's InvalidInputException: a failed operation.
    not_started = await gluectl("triggers", "stop", "nightly")
    assert (not_started.code, not_started.out) == (1, "")
    assert not_started.err.startswith("gluectl: InvalidInputException: ")
    assert "CREATED" in not_started.err and not_started.err.count("\n") == 1

    started = await gluectl("triggers", "start", "nightly")
    assert (started.code, started.out, started.err) == (0, "nightly\n", "")
    assert (await _trigger(gluectl, "nightly"))["State"] == "ACTIVATED"
    stopped = await gluectl("-o", "json", "triggers", "stop", "nightly")
    assert (stopped.code, stopped.json()) == (0, {"Name": "nightly"})
    assert (await _trigger(gluectl, "nightly"))["State"] == "DEACTIVATED"
    assert (await gluectl("triggers", "stop", "nightly")).code == 0  # already stopped
    await _ok(gluectl, "-o", "json", "triggers", "start", "nightly")

    # Only the parts given change; the trigger stays ACTIVATED (rescheduled).
    updated = await gluectl(
        "triggers", "update", "nightly", "--schedule", "cron(30 4 * * ? *)",
        "--description", "new",
    )  # fmt: skip
    assert (updated.code, updated.out) == (0, "nightly\n"), updated.err
    nightly = await _trigger(gluectl, "nightly")
    assert nightly["Schedule"] == "cron(30 4 * * ? *)" and nightly["Description"] == "new"
    assert nightly["Actions"] == [{"JobName": "extract"}]
    assert (nightly["Type"], nightly["State"]) == ("SCHEDULED", "ACTIVATED")

    # -o json: UpdateTrigger's response, the whole trigger.
    as_json = await gluectl(
        "-o", "json", "triggers", "update", "nightly", "--action", "extract", "--action",
        "load", "--action-arg", "load:day=sun",
    )  # fmt: skip
    assert as_json.code == 0, as_json.err
    trigger = as_json.json()["Trigger"]
    assert trigger["Name"] == "nightly" and trigger["Schedule"] == "cron(30 4 * * ? *)"
    assert trigger["Actions"] == [
        {"JobName": "extract"},
        {"JobName": "load", "Arguments": {"--day": "sun"}},
    ]
    # --action-arg / --action-timeout alone change the trigger's current actions.
    await _ok(gluectl, "triggers", "update", "nightly", "--action-timeout", "extract:9")
    assert (await _trigger(gluectl, "nightly"))["Actions"] == [
        {"JobName": "extract", "Timeout": 9},
        {"JobName": "load", "Arguments": {"--day": "sun"}},
    ]

    await _ok(gluectl, "triggers", "create", "chain", "--when", "extract=SUCCEEDED",
              "--action", "report")  # fmt: skip
    await _ok(gluectl, "triggers", "update", "chain", "--when", "extract=FAILED or load=FAILED")
    chain = await _trigger(gluectl, "chain")
    assert chain["Predicate"]["Logical"] == "ANY"
    assert [c["JobName"] for c in chain["Predicate"]["Conditions"]] == ["extract", "load"]
    assert chain["Actions"] == [{"JobName": "report"}] and chain["State"] == "CREATED"

    # An UpdateTrigger request from a file, flags on top.
    update = {"Name": "chain", "TriggerUpdate": {"Description": "from a file"}}
    (tmp_path / "update.json").write_text(json.dumps(update))
    await _ok(gluectl, "triggers", "update", "chain", "--from-json",
              str(tmp_path / "update.json"), "--action-timeout", "report:4")  # fmt: skip
    chain = await _trigger(gluectl, "chain")
    assert chain["Description"] == "from a file"
    assert chain["Actions"] == [{"JobName": "report", "Timeout": 4}]

    # The service's rules are failed operations (1): a Schedule on a CONDITIONAL trigger.
    wrong = await gluectl("triggers", "update", "chain", "--schedule", "cron(0 1 * * ? *)")
    assert wrong.code == 1 and wrong.err.startswith("gluectl: InvalidInputException: Schedule")

    # Usage errors (2): nothing to change; an argument for a job no action starts.
    for argv, message in [
        ([], "nothing to change"),
        (["--action", "load", "--action-arg", "extract:k=v"], "no action starts job 'extract'"),
        (["--action-arg", "load:k=v"], "no action starts job 'load' (actions: report)"),
    ]:
        result = await gluectl("triggers", "update", "chain", *argv)
        assert (result.code, result.out) == (2, ""), argv
        assert message in result.err and result.err.startswith("usage: gluectl triggers update")

    deleted = await gluectl("triggers", "delete", "nightly")
    assert (deleted.code, deleted.out) == (0, "nightly\n")
    missing = await gluectl("triggers", "get", "nightly")
    assert (missing.code, missing.out) == (1, "")
    assert missing.err == "gluectl: EntityNotFoundException: Trigger nightly not found.\n"
    # Deleting what does not exist succeeds, as in Glue.
    again = await gluectl("-o", "json", "triggers", "delete", "nightly")
    assert (again.code, again.json()) == (0, {"Name": "nightly"})
    listed = await _ok(gluectl, "-o", "json", "triggers", "list")
    assert listed.json() == {"TriggerNames": ["chain"]}


# -- fire and the ledger ---------------------------------------------------------------------


async def test_fire_fires_and_a_conditional_chain(
    gluectl: Gluectl, stack: Stack, jobs: list[str]
) -> None:
    await _ok(gluectl, "triggers", "create", "kick", "--on-demand", "--action", "extract",
              "--action-arg", "extract:day=tue")  # fmt: skip
    # The chain extract -> load -> report, each link a CONDITIONAL trigger.
    await _ok(gluectl, "triggers", "create", "then-load", "--when", "extract=SUCCEEDED",
              "--action", "load", "--start")  # fmt: skip
    await _ok(gluectl, "triggers", "create", "then-report", "--when", "load=SUCCEEDED",
              "--action", "report", "--start")  # fmt: skip

    fired = await gluectl("triggers", "fire", "kick")
    assert (fired.code, fired.err) == (0, "")
    (run_id,) = fired.out.splitlines()
    assert RUN_ID.match(run_id)
    run = await stack.wait_run("extract", run_id)
    assert run.job_run_state == "SUCCEEDED" and run.trigger_name == "kick"
    assert run.arguments["--day"] == "tue"

    # The run is in `runs list` of the action's job; the chain runs to its end.
    (extract_run,) = await _runs_of(gluectl, "extract", 1)
    assert (extract_run["Id"], extract_run["TriggerName"]) == (run_id, "kick")
    (load_run,) = await _runs_of(gluectl, "load", 1)
    assert load_run["TriggerName"] == "then-load" and load_run["JobRunState"] == "SUCCEEDED"
    (report_run,) = await _runs_of(gluectl, "report", 1)
    assert report_run["TriggerName"] == "then-report"
    assert report_run["JobRunState"] == "SUCCEEDED"

    # The ledger: the manual fire, with its run.
    ledger = await _ok(gluectl, "triggers", "fires", "kick")
    header, *rows = ledger.table()
    assert header == ["Scheduled", "Recorded", "Outcome", "DueTimes", "Runs", "Reason"]
    assert len(rows) == 1
    assert rows[0][2:] == ["FIRED", "1", short_run_id(run_id), "manual fire"]
    for cell in rows[0][:2]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cell)
    as_json = (await _ok(gluectl, "-o", "json", "triggers", "fires", "kick")).json()
    (entry,) = as_json["Fires"]
    assert entry["TriggerName"] == "kick" and entry["Outcome"] == "FIRED"
    assert entry["RunIds"] == [run_id] and entry["Reason"] == "manual fire"
    assert datetime.fromisoformat(entry["RecordedAt"]) >= datetime.fromisoformat(
        entry["ScheduledAt"]
    )
    chained = (await _ok(gluectl, "-o", "json", "triggers", "fires", "then-load")).json()
    assert [f["Outcome"] for f in chained["Fires"]] == ["FIRED"]
    assert chained["Fires"][0]["RunIds"] == [load_run["Id"]]

    # StartTrigger fires an ON_DEMAND trigger once; it stays CREATED. Newest first; --max.
    assert (await _ok(gluectl, "triggers", "start", "kick")).out == "kick\n"
    assert (await _trigger(gluectl, "kick"))["State"] == "CREATED"
    await _runs_of(gluectl, "report", 2)
    newest = (await _ok(gluectl, "-o", "json", "triggers", "fires", "kick", "--max", "1")).json()
    assert [f["Reason"] for f in newest["Fires"]] == ["on demand"]
    both = (await _ok(gluectl, "-o", "json", "triggers", "fires", "kick")).json()
    assert [f["Reason"] for f in both["Fires"]] == ["on demand", "manual fire"]

    # -o json: FireTrigger's response; a fire starts one run per action.
    await _ok(gluectl, "triggers", "update", "kick", "--action", "extract", "--action", "load")
    fire = (await _ok(gluectl, "-o", "json", "triggers", "fire", "kick")).json()["Fire"]
    assert fire["TriggerName"] == "kick" and fire["Outcome"] == "FIRED"
    assert len(fire["RunIds"]) == 2 and all(RUN_ID.match(r) for r in fire["RunIds"])
    assert (await stack.wait_run("load", fire["RunIds"][1])).trigger_name == "kick"


async def test_a_scheduled_trigger_can_be_fired_now(
    gluectl: Gluectl, stack: Stack, jobs: list[str]
) -> None:
    # A schedule that will not come due during the test; `fire` runs it anyway, even DEACTIVATED.
    await _ok(gluectl, "triggers", "create", "yearly", "--schedule", "cron(0 0 1 1 ? *)",
              "--action", "load", "--start")  # fmt: skip
    await _ok(gluectl, "triggers", "stop", "yearly")
    (run_id,) = (await _ok(gluectl, "triggers", "fire", "yearly")).out.splitlines()
    run = await stack.wait_run("load", run_id)
    assert run.job_run_state == "SUCCEEDED" and run.trigger_name == "yearly"
    (entry,) = (await _ok(gluectl, "-o", "json", "triggers", "fires", "yearly")).json()["Fires"]
    assert entry["Outcome"] == "FIRED" and entry["RunIds"] == [run_id]


# -- errors ----------------------------------------------------------------------------------


async def test_unknown_triggers_fail_with_one_line(
    gluectl: Gluectl, stack: Stack, jobs: list[str]
) -> None:
    for argv in [
        ("triggers", "get", "nope"),
        ("triggers", "start", "nope"),
        ("triggers", "stop", "nope"),
        ("triggers", "update", "nope", "--description", "x"),
        ("triggers", "update", "nope", "--action-arg", "extract:k=v"),
        ("triggers", "fire", "nope"),
        ("triggers", "fires", "nope"),
        ("-o", "json", "triggers", "get", "nope"),
    ]:
        result = await gluectl(*argv)
        # One comparison of all three, so a failure shows what was printed instead.
        assert (result.code, result.out, result.err) == (
            1,
            "",
            "gluectl: EntityNotFoundException: Trigger nope not found.\n",
        ), argv
    assert (await gluectl("triggers", "delete", "nope")).code == 0


async def test_service_rules_fail_with_one_line(
    gluectl: Gluectl, stack: Stack, jobs: list[str]
) -> None:
    bad = "cron(0 12 ? * 8 *)"
    for argv, line in [
        (
            ["--on-demand", "--action", "nope"],
            "gluectl: EntityNotFoundException: Job nope not found.",
        ),
        (["--schedule", bad, "--action", "load"], "gluectl: InvalidInputException: Schedule: "),
        (["--on-demand", "--action", "load", "--start"], "gluectl: InvalidInputException: "),
        (
            ["--when", "load=SUCCEEDED", "--action", "load"],
            "gluectl: InvalidInputException: Job cannot be a Predicate and Action",
        ),
    ]:
        result = await gluectl("triggers", "create", "t", *argv)
        assert (result.code, result.out) == (1, ""), argv
        assert result.err.startswith(line) and result.err.count("\n") == 1, (argv, result.err)

    # `triggers next` finds the same invalid schedule offline and prints the very same line.
    created = await gluectl("triggers", "create", "t", "--schedule", bad, "--action", "load")
    preview = await gluectl("triggers", "next", bad)
    assert (preview.code, preview.out) == (1, "")
    assert preview.err == created.err

    await _ok(gluectl, "triggers", "create", "t", "--on-demand", "--action", "load")
    duplicate = await gluectl("triggers", "create", "t", "--on-demand", "--action", "load")
    assert duplicate.code == 1
    assert duplicate.err.startswith("gluectl: AlreadyExistsException: ")
    too_many = await gluectl("triggers", "fires", "t", "--max", "201")
    assert too_many.code == 1 and "InvalidInputException: MaxResults" in too_many.err
    assert (await gluectl("-o", "json", "triggers", "list")).json() == {"TriggerNames": ["t"]}


# -- without a service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--when", "a=SUCCEEDED and b=SUCCEEDED or c=FAILED"], "cannot mix 'and' and 'or'"),
        (["--when", "a=RUNNING"], "job state 'RUNNING' in 'a=RUNNING' must be one of"),
        (["--when", "a=SUCCEEDED and b"], "expected JOB=STATE, got 'b'"),
        (["--when", "a=SUCCEEDED and =FAILED"], "expected JOB=STATE"),
        (["--when", ""], "expected JOB=STATE"),
        (["--when", "a=SUCCEEDED and"], "expected JOB=STATE"),
        (["--schedule", "cron(0 2 * * ? *)", "--on-demand"], "not allowed with argument"),
        (["--action", "j"], "one of --schedule, --on-demand or --when is required"),
        (["--on-demand"], "--action is required"),
        (["--on-demand", "--action", "j", "--action-arg", "j=1"], "expected JOB:KEY=VALUE"),
        (["--on-demand", "--action", "j", "--action-arg", "k:x=1"], "no action starts job 'k'"),
        (["--on-demand", "--action", "j", "--action-timeout", "j:0"], "at least 1 minute"),
        (["--on-demand", "--action", "j", "--action-timeout", "j"], "expected JOB:MINUTES"),
        (["--on-demand", "--action", "j", "--tag", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_create_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at UNREACHABLE: a 2 (not a 3) shows nothing was sent.
    assert main(["--endpoint", UNREACHABLE, "triggers", "create", "t", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: gluectl triggers create")
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["triggers"],
        ["triggers", "frobnicate"],
        ["triggers", "get"],
        ["triggers", "update", "t", "--on-demand"],
        ["triggers", "update", "t", "--when", "a=SUCCEEDED or"],
        ["triggers", "fires", "t", "--max", "0"],
        ["triggers", "list", "--tag", "x"],
        ["triggers", "fire"],
    ],
)
def test_other_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "usage: gluectl" in captured.err


@pytest.mark.parametrize(
    "argv",
    [["triggers", "list"], ["triggers", "fire", "t"], ["triggers", "fires", "t"]],
)
def test_unreachable_endpoint_exits_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, *argv]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gluectl: the Glue service at {UNREACHABLE} is unreachable")


def test_help_lists_the_trigger_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triggers", "--help"]) == 0
    out = capsys.readouterr().out
    for command in ("create", "list", "get", "start", "stop", "update", "delete", "fire", "next"):
        assert re.search(rf"^    {command} ", out, re.MULTILINE), command


# -- GlueClient ------------------------------------------------------------------------------


async def test_client_trigger_methods(stack: Stack, jobs: list[str]) -> None:
    assert stack.catalog is not None
    async with GlueClient(f"127.0.0.1:{stack.catalog.port}") as glue:
        for index in range(5):
            created = await glue.create_trigger(
                Name=f"t{index}",
                Type="ON_DEMAND",
                Actions=[{"JobName": "load" if index % 2 else "report"}],
                Tags={"parity": str(index % 2)},
            )
            assert created.name == f"t{index}"
        # The iterators follow NextToken across pages.
        names = [n async for n in glue.iter_trigger_names(page_size=2)]
        assert names == ["t0", "t1", "t2", "t3", "t4"]
        odd = [n async for n in glue.iter_trigger_names(tags={"parity": "1"}, page_size=1)]
        assert odd == ["t1", "t3"]
        loads = [t.name async for t in glue.iter_triggers(dependent_job_name="load", page_size=1)]
        assert loads == ["t1", "t3"]
        page = await glue.get_triggers(max_results=3)
        assert [t.name for t in page.triggers] == ["t0", "t1", "t2"] and page.next_token
        batch = await glue.batch_get_triggers(["t4", "zz"])
        assert [t.name for t in batch.triggers] == ["t4"]
        assert list(batch.triggers_not_found) == ["zz"]

        updated = await glue.update_trigger(
            "t0", {"Description": "d"}, Actions=[{"JobName": "load"}]
        )
        assert updated.trigger.description == "d"
        assert [a.job_name for a in updated.trigger.actions] == ["load"]
        assert (await glue.get_trigger("t0")).trigger.description == "d"

        fire = (await glue.fire_trigger("t0")).fire
        assert fire.outcome == "FIRED" and len(fire.run_ids) == 1
        assert (await stack.wait_run("load", fire.run_ids[0])).trigger_name == "t0"
        assert (await glue.start_trigger("t0")).name == "t0"
        fires = (await glue.get_trigger_fires("t0", max_results=5)).fires
        assert [f.reason for f in fires] == ["on demand", "manual fire"]

        await glue.create_trigger(
            {"Name": "s", "Type": "SCHEDULED", "Schedule": "cron(0 3 * * ? *)"},
            Actions=[{"JobName": "load"}],
            StartOnCreation=True,
        )
        assert (await glue.stop_trigger("s")).name == "s"
        assert (await glue.get_trigger("s")).trigger.state == "DEACTIVATED"
        assert (await glue.delete_trigger("s")).name == "s"
        assert [n async for n in glue.iter_trigger_names()] == ["t0", "t1", "t2", "t3", "t4"]
        with pytest.raises(ValueError, match="no member 'Shedule'"):
            await glue.create_trigger(Name="x", Type="SCHEDULED", Shedule="cron(0 3 * * ? *)")
