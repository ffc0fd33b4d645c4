"""The console over plain HTTP: sessions, CSRF, login, security headers, policies, the log
stream and escaping. A real catalog and scheduler; no browser needed for these."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
import trustme

from catalog_service.console import Console
from catalog_service.gateway.server import HttpGateway
from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.console.conftest import console_client
from tests.gateway.test_tls import ALICE, operations_of
from tests.helpers.access_keys import TEAM_A, restart_with_keys
from tests.helpers.scripts import write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def page(http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    """GET without following redirects: (status, body)."""
    async with http.get(path, allow_redirects=False) as response:
        return response.status, await response.text()


async def csrf_token(http: aiohttp.ClientSession, path: str) -> str:
    """The CSRF token in a page's forms."""
    status, body = await page(http, path)
    assert status == 200, body
    match = CSRF.search(body)
    assert match, body
    return match.group(1)


async def post(
    http: aiohttp.ClientSession, path: str, **form: str
) -> tuple[int, str, aiohttp.ClientResponse]:
    """POST a form without following redirects: (status, Location or body, response)."""
    async with http.post(path, data=form, allow_redirects=False) as response:
        text = response.headers.get("Location") or await response.text()
        return response.status, text, response


async def log_in(
    http: aiohttp.ClientSession,
    key_id: str = TEAM_A.access_key_id,
    secret: str = TEAM_A.secret_access_key,
    next_: str = "",
) -> tuple[int, str, aiohttp.ClientResponse]:
    """POST the login form (as team A unless told): (status, Location or body, response)."""
    return await post(http, "/console/login", key_id=key_id, secret=secret, next=next_)


async def test_a_post_without_the_sessions_csrf_token_is_refused(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await stack.create_job("etl", write_script(tmp_path, "ok.py", "print('ok')\n"))
    token = await csrf_token(http, "/console/job?name=etl")
    assert (await post(http, "/console/job/start", name="etl"))[0] == 403
    assert (await post(http, "/console/job/start", name="etl", csrf_token=token + "x"))[0] == 403
    # Another browser's session and token do not fit this one.
    async with console_client(stack) as other:
        assert (await post(other, "/console/job/start", name="etl", csrf_token=token))[0] == 403
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="etl"))
    assert list(runs.job_runs) == []
    # The token as htmx sends it, in a header.
    async with http.post(
        "/console/job/start",
        data={"name": "etl"},
        headers={"X-CSRF-Token": token},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        run_id = response.headers["Location"].split("id=")[1]
    assert (await stack.wait_run("etl", run_id)).job_run_state == "SUCCEEDED"


async def test_root_redirects_and_pages_carry_security_headers(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get("/", allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "/console/")
    async with http.get("/console/", allow_redirects=False) as response:
        assert response.status == 200
        headers = response.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback
    # A Glue request to / is still the gateway's, even as a GET.
    async with http.get("/", headers={"X-Amz-Target": "AWSGlue.GetJobs"}) as response:
        assert response.status == 400
        assert json.loads(await response.text())["__type"] == "UnknownOperationException"
    async with http.get("/console/static/htmx.min.js") as response:
        assert response.status == 200
        assert "htmx" in await response.text()
    # The Glue protocol on the same listener is untouched.
    async with http.post(
        "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AWSGlue.GetJobs",
            "Content-Type": "application/x-amz-json-1.1",
        },
    ) as response:
        assert response.status == 200
        assert json.loads(await response.text()) == {"Jobs": []}


async def test_with_access_keys_the_console_asks_for_a_key(stack: Stack, tmp_path: Path) -> None:
    await restart_with_keys(stack, tmp_path / "keys.json")
    async with console_client(stack) as http:
        await _login_flow(stack, http, tmp_path)


async def _login_flow(stack: Stack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    await stack.create_job("team-a-etl", write_script(tmp_path, "ok.py", "print('ok')\n"))
    async with http.get("/console/job?name=team-a-etl", allow_redirects=False) as response:
        assert response.headers["Location"] == (
            "/console/login?next=%2Fconsole%2Fjob%3Fname%3Dteam-a-etl"
        )
    assert (await post(http, "/console/job/start", name="team-a-etl"))[0] == 403

    assert (await log_in(http, secret="wrong"))[0] == 401
    assert (await log_in(http, key_id="AKIDNOSUCHKEY"))[0] == 401
    # A refused login opens no session.
    assert len(http.cookie_jar) == 0

    status, location, response = await log_in(http, next_="/console/job?name=team-a-etl")
    assert (status, location) == (303, "/console/job?name=team-a-etl")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TEAM_A.secret_access_key not in cookie
    session_id = response.cookies["glue_console_session"].value
    assert len(session_id) >= 43  # 256 random bits

    token = await csrf_token(http, "/console/job?name=team-a-etl")
    assert (await post(http, "/console/job/start", name="team-a-etl"))[0] == 403
    status, location, _ = await post(
        http, "/console/job/start", name="team-a-etl", csrf_token=token
    )
    assert status == 303
    run = await stack.wait_run("team-a-etl", location.split("id=")[1])
    # The run is started as the logged-in key, exactly as a signed StartJobRun would be.
    assert run.started_by == "arn:aws:iam::123456789012:user/team-a"

    assert (await post(http, "/console/logout", csrf_token=token))[0] == 303
    assert (await page(http, "/console/"))[0] == 303
    # A login never sends the browser to another site.
    status, location, _ = await log_in(http, next_="//evil.example/console/")
    assert (status, location) == (303, "/console/")


async def test_a_keys_policy_limits_what_it_sees_and_does(stack: Stack, tmp_path: Path) -> None:
    await restart_with_keys(stack, tmp_path / "keys.json")
    async with console_client(stack) as http:
        await _team_a_sees_its_own(stack, http, tmp_path)


async def _team_a_sees_its_own(stack: Stack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("team-a-etl", script)
    await stack.create_job("team-b-etl", script)
    theirs = await stack.start_run("team-b-etl")
    await stack.wait_run("team-b-etl", theirs)
    assert (await log_in(http))[0] == 303

    status, jobs = await page(http, "/console/")
    assert status == 200
    assert "team-a-etl" in jobs and "team-b-etl" not in jobs
    status, runs = await page(http, "/console/runs")
    assert status == 200 and theirs not in runs
    status, body = await page(http, "/console/job?name=team-b-etl")
    assert status == 403 and "AccessDeniedException" in body
    status, body = await page(http, f"/console/run?job=team-b-etl&id={theirs}")
    assert status == 403
    async with http.get(f"/console/run/log?job=team-b-etl&id={theirs}") as response:
        assert response.status == 403
    token = await csrf_token(http, "/console/job?name=team-a-etl")
    status, body, _ = await post(http, "/console/job/start", name="team-b-etl", csrf_token=token)
    assert status == 403 and "AccessDeniedException" in body
    runs_b = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="team-b-etl"))
    assert [r.id for r in runs_b.job_runs] == [theirs]


SHOUTY = """
print("<b>bold</b> & done", flush=True)
print("second line", flush=True)
"""


async def test_the_log_stream_and_escaping(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await stack.create_job(
        "shouty",
        write_script(tmp_path, "shouty.py", SHOUTY),
        description="<script>alert(1)</script>",
    )
    run_id = await stack.start_run("shouty")
    await stack.wait_run("shouty", run_id)
    status, body = await page(http, "/console/job?name=shouty")
    assert status == 200
    assert "<script>alert" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body

    async with http.get(f"/console/run/log?job=shouty&id={run_id}") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = _events(await response.text())
    assert events[-1] == ("end", None, "{}")
    text = "".join(json.loads(data) for kind, _, data in events if kind == "log")
    assert text == "<b>bold</b> & done\nsecond line\n"
    # Resuming at the offset of the first line (EventSource's Last-Event-ID) sends the rest.
    first_line = len(b"<b>bold</b> & done\n")
    async with http.get(
        f"/console/run/log?job=shouty&id={run_id}", headers={"Last-Event-ID": str(first_line)}
    ) as response:
        rest = _events(await response.text())
    assert "".join(json.loads(d) for k, _, d in rest if k == "log") == "second line\n"
    assert [i for k, i, _ in rest if k == "log"][-1] == str(len(text.encode()))

    status, body = await page(http, "/console/run?job=shouty&id=nope")
    assert status == 404 and "EntityNotFoundException" in body


def _events(stream: str) -> list[tuple[str, str | None, str]]:
    """Server-sent events as (event, id, data)."""
    events = []
    for block in stream.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], fields.get("id"), fields["data"]))
    return events


async def test_chains_and_trigger_pages(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    for name in ("extract", "transform", "load"):
        await stack.create_job(name, script)
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="go", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="extract")]
        )
    )
    for watched, started in (("extract", "transform"), ("transform", "load")):
        await stack.glue.CreateTrigger(
            glue_pb2.CreateTriggerRequest(
                name=f"after-{watched}",
                type="CONDITIONAL",
                start_on_creation=True,
                predicate=glue_pb2.Predicate(
                    conditions=[
                        glue_pb2.Condition(
                            logical_operator="EQUALS", job_name=watched, state="SUCCEEDED"
                        )
                    ]
                ),
                actions=[glue_pb2.Action(job_name=started)],
            )
        )
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="go"))
    # The fire's run reaches the catalog through the scheduler's event stream.
    for _ in range(200):
        runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="extract"))
        if runs.job_runs:
            break
        await asyncio.sleep(0.05)
    await stack.wait_run("extract", runs.job_runs[0].id)

    status, body = await page(http, "/console/chains")
    assert status == 200
    xs = {
        name: int(x)
        for name, x in re.findall(
            r'data-name="([^"]+)">\s*<title>[^<]*</title>\s*<rect x="(\d+)"', body
        )
    }
    # Left to right along the chain.
    order = ["go", "extract", "after-extract", "transform", "after-transform", "load"]
    assert sorted(xs, key=xs.__getitem__) == order
    assert body.count('class="edge"') == 5 and body.count(">SUCCEEDED</text>") == 2

    status, body = await page(http, "/console/trigger?name=go")
    assert status == 200
    assert "FIRED" in body and "Next fire times" not in body
    status, body = await page(http, "/console/runs?trigger=go")
    assert status == 200 and runs.job_runs[0].id in body
    status, body = await page(http, "/console/runs?trigger=after-extract&state=FAILED")
    assert status == 200 and "No runs." in body


TICKER = """
import time
for i in range(100):
    print(f"tick {i}", flush=True)
    time.sleep(0.2)
"""


async def test_an_open_log_stream_does_not_hold_up_shutdown(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await stack.create_job("ticker", write_script(tmp_path, "ticker.py", TICKER))
    run_id = await stack.start_run("ticker")
    async with http.get(f"/console/run/log?job=ticker&id={run_id}") as response:
        assert b"tick 0" in await response.content.readuntil(b"\n\n")
        started = time.monotonic()
        await stack.stop_catalog()
        stopped = time.monotonic() - started
        # The stream ends cleanly, saying why (not "end": the run goes on).
        rest = await response.content.read()
        assert rest.endswith(b"event: closing\ndata: {}\n\n") and b"event: end" not in rest
    # Held up, it would last until the run ends (20 s); the margin is for a loaded machine.
    assert stopped < stack.catalog_settings.shutdown_grace_seconds + 5
    await stack.start_catalog()
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="ticker", job_run_ids=[run_id])
    )
    assert (await stack.wait_run("ticker", run_id)).job_run_state == "STOPPED"


async def test_over_https_the_session_cookie_is_secure(stack: Stack) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    keys = {ALICE.key_id: ALICE}
    async with operations_of(stack) as operations:
        gateway = HttpGateway(
            operations,
            "127.0.0.1:0",
            access_keys=keys,
            ssl_context=server_context,
            mounts=[Console(operations, keys).mount],
        )
        await gateway.start()
        try:
            async with (
                aiohttp.ClientSession(base_url=f"https://127.0.0.1:{gateway.port}") as https,
                https.post(
                    "/console/login",
                    data={"key_id": ALICE.key_id, "secret": ALICE.secret},
                    ssl=client_context,
                    allow_redirects=False,
                ) as response,
            ):
                assert response.status == 303
                cookie = response.headers["Set-Cookie"]
        finally:
            await gateway.stop()
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_jobs_show_their_latest_run_and_runs_filter_across_jobs(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await stack.create_job("fine", write_script(tmp_path, "ok.py", "print('ok')\n"))
    await stack.create_job("broken", write_script(tmp_path, "bad.py", "raise SystemExit(3)\n"))
    first = await stack.start_run("fine")
    await stack.wait_run("fine", first)
    failed = await stack.start_run("broken")
    await stack.wait_run("broken", failed)
    latest = await stack.start_run("fine")
    await stack.wait_run("fine", latest)

    status, body = await page(http, "/console/")
    assert status == 200
    rows = dict(re.findall(r'<tr data-job="([^"]+)">(.*?)</tr>', body, re.DOTALL))
    assert latest in rows["fine"] and first not in rows["fine"] and "SUCCEEDED" in rows["fine"]
    assert failed in rows["broken"] and "FAILED" in rows["broken"]

    def shown(body: str) -> list[str]:
        return re.findall(r'<tr data-run="([^"]+)">', body)

    assert shown((await page(http, "/console/runs"))[1]) == [latest, failed, first]
    assert shown((await page(http, "/console/runs?job=fine"))[1]) == [latest, first]
    assert shown((await page(http, "/console/runs?state=FAILED"))[1]) == [failed]
    # The table alone, as htmx asks for it when a filter changes.
    async with http.get("/console/runs?job=broken", headers={"HX-Request": "true"}) as response:
        fragment = await response.text()
    assert shown(fragment) == [failed] and "<html" not in fragment
