"""The console clicked through in headless chromium, against the real catalog and scheduler.

Jobs and triggers are created "elsewhere" (gRPC, as gluectl or boto3 would), then found,
started, watched and stopped in the browser. Screenshots go to the folder the session prints.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from glue.v1 import glue_pb2
from glue_vocabulary.cron import parse_schedule
from tests.conftest import Stack
from tests.console.conftest import Browser, console_url
from tests.helpers.access_keys import TEAM_A, restart_with_keys
from tests.helpers.scripts import write_script

pytestmark = [pytest.mark.slow, pytest.mark.catalog_settings(http_listen="127.0.0.1:0")]

# A line every 0.3 s for a minute: the page must show them as they come, not at the end.
TICKER = """
import time
for i in range(200):
    print(f"tick {i}", flush=True)
    time.sleep(0.3)
"""


async def test_start_a_run_watch_its_log_live_and_stop_it(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    await stack.create_job("nightly-ticker", write_script(tmp_path, "ticker.py", TICKER))

    def open_job_and_start() -> tuple[str, str]:
        page = browser.new_page()
        page.goto(console_url(stack))
        row = page.locator("#jobs tr[data-job='nightly-ticker']")
        expect(row).to_contain_text("never run")
        browser.screenshot(page, "jobs")
        row.get_by_role("link", name="nightly-ticker").click()
        page.locator("#start-run").click()
        expect(page).to_have_url(re.compile(r"/console/run\?"))
        log = page.locator("#log")
        expect(log).to_contain_text("tick 1")
        first = log.inner_text()
        # More lines arrive while the page stays open (no reload): the log is live.
        expect(log).to_contain_text("tick 6")
        assert len(log.inner_text()) > len(first)
        expect(page.locator("#run-state")).to_contain_text("RUNNING")
        browser.screenshot(page, "run-live-log")
        page.locator("#stop-run").click()
        expect(page.locator("#run-state")).to_contain_text("STOPPED", timeout=20_000)
        expect(page.locator("#log-state")).to_contain_text("ended")
        expect(page.locator("#stop-run")).to_have_count(0)
        browser.screenshot(page, "run-stopped")
        run_id = page.url.split("id=")[1]
        lines = log.inner_text()
        page.context.close()
        return run_id, lines

    run_id, lines = await browser.run(open_job_and_start)
    run = await stack.get_run("nightly-ticker", run_id)
    assert run.job_run_state == "STOPPED"
    ticks = [int(n) for n in re.findall(r"tick (\d+)", lines)]
    # Every line once, in order: resuming and appending lost or doubled nothing.
    assert ticks == list(range(len(ticks)))

    def jobs_page_shows_the_stop() -> str:
        page = browser.new_page()
        page.goto(console_url(stack))
        text: str = page.locator("#jobs tr[data-job='nightly-ticker']").inner_text()
        page.goto(console_url(stack, "/console/runs?state=STOPPED"))
        expect(page.locator(f"#runs tr[data-run='{run_id}']")).to_contain_text("STOPPED")
        browser.screenshot(page, "runs-filtered")
        page.context.close()
        return text

    assert "STOPPED" in await browser.run(jobs_page_shows_the_stop)


async def test_trigger_page_shows_its_next_fires_and_toggles(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    await stack.create_job("report", write_script(tmp_path, "report.py", "print('r')\n"))
    schedule = "cron(15 12 1,15 * ? *)"
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="fortnightly-report",
            type="SCHEDULED",
            schedule=schedule,
            actions=[glue_pb2.Action(job_name="report")],
        )
    )

    def read_and_toggle() -> tuple[list[str], list[str], datetime]:
        page = browser.new_page(timezone="Asia/Tokyo")
        page.goto(console_url(stack, "/console/triggers"))
        page.get_by_role("link", name="fortnightly-report").click()
        loaded = datetime.now(UTC)
        times = page.locator("#next-fires time")
        expect(times).to_have_count(3)
        shown = [str(t.get_attribute("datetime")) for t in times.all()]
        local = page.locator("#next-fires .local-time").all_inner_texts()
        browser.screenshot(page, "trigger-next-fires")
        page.locator("#activate").click()
        expect(page.locator("#trigger-state")).to_contain_text("ACTIVATED")
        browser.screenshot(page, "trigger-activated")
        page.locator("#deactivate").click()
        expect(page.locator("#trigger-state")).to_contain_text("DEACTIVATED")
        page.get_by_role("link", name="Chains").click()
        expect(page.locator("#chains a[data-name='fortnightly-report']")).to_be_visible()
        expect(page.locator("#chains a[data-name='report']")).to_be_visible()
        browser.screenshot(page, "chains")
        page.context.close()
        return shown, local, loaded

    shown, local, loaded = await browser.run(read_and_toggle)
    expected = parse_schedule(schedule).next_fire_times(loaded, 3)
    assert shown == [t.isoformat().replace("+00:00", "Z") for t in expected]
    # 12:15 UTC is 21:15 in Tokyo: the viewer's zone is shown beside UTC.
    assert all("21:15:00" in text for text in local), local
    trigger = await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="fortnightly-report"))
    assert trigger.trigger.state == "DEACTIVATED"


async def test_login_then_a_key_sees_only_what_its_policy_allows(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    await restart_with_keys(stack, tmp_path / "keys.json")
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("team-a-load", script)
    await stack.create_job("team-b-load", script)

    def log_in() -> tuple[list[str], list[dict[str, Any]]]:
        page = browser.new_page()
        page.goto(console_url(stack))
        expect(page).to_have_url(re.compile(r"/console/login"))
        page.fill("input[name=key_id]", TEAM_A.access_key_id)
        page.fill("input[name=secret]", "not-the-secret")
        page.locator("#login").click()
        expect(page.locator("#login-failed")).to_be_visible()
        browser.screenshot(page, "login-refused")
        page.fill("input[name=key_id]", TEAM_A.access_key_id)
        page.fill("input[name=secret]", TEAM_A.secret_access_key)
        page.locator("#login").click()
        expect(page.locator("#jobs")).to_be_visible()
        browser.screenshot(page, "jobs-as-team-a")
        names = page.locator("#jobs tr[data-job]").evaluate_all(
            "rows => rows.map(r => r.dataset.job)"
        )
        cookies = page.context.cookies()
        page.locator("text=Log out").click()
        expect(page).to_have_url(re.compile(r"/console/login"))
        page.context.close()
        return names, cookies

    names, cookies = await browser.run(log_in)
    assert names == ["team-a-load"]
    (cookie,) = cookies
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert TEAM_A.secret_access_key not in cookie["value"]
