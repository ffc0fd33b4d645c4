"""What a job can see and read: its environment, its script, the services' files.

Each test here is a finding of the review "Job sandbox" (hostile job scripts) and failed on
the code before the fix: a job that printed the scheduler's PGPASSWORD,
AWS_SECRET_ACCESS_KEY and SCHEDULER_DATABASE_URL; a ScriptLocation naming a secrets file or
/etc/shadow whose lines came back in the run's ErrorMessage through Python's SyntaxError.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog_service.app import CatalogApp
from scheduler_service.cli import parse_settings, settings_environment
from scheduler_service.commands import (
    CommandSettings,
    check_run_reach,
    plan_launch,
)
from scheduler_service.run_access import (
    Identity,
    R,
    X,
    reach_problem,
    root_policy_problem,
    run_identity,
)
from scheduler_service.runner import LaunchError
from servicekit import devrun
from tests.conftest import Stack
from tests.helpers.scripts import write_script

SECRETS = {
    "PGPASSWORD": "pg-secret-1",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-2",
    "SCHEDULER_DATABASE_URL": "postgresql+asyncpg://u:db-secret-3@h/db",
    "CATALOG_ACCESS_KEYS": "/secret/keys.json",
}
# Prints its whole environment where the test can read it.
PRINT_ENV = """
import json, os, sys
with open(sys.argv[0] + ".env.json", "w") as out:
    json.dump(dict(os.environ), out)
"""
# A line like /etc/shadow's: a SyntaxError shows it if Python compiles the file.
SHADOW_LINE = "root:$6$s3cr3tHash$abcdef:19000:0:99999:7:::"
NOBODY = "nobody"


@pytest.fixture
def nobody() -> Identity:
    """The user ``nobody``, as a run identity (skips where there is none, or we are it)."""
    try:
        identity = Identity.of_user(NOBODY)
    except ValueError:
        pytest.skip("this machine has no user 'nobody'")
    if os.geteuid() == identity.uid:
        pytest.skip("runs as nobody, so nobody can read its own files")
    return identity


@pytest.fixture
def open_dir(nobody: Identity) -> Iterator[Path]:
    """A directory nobody may enter (pytest's tmp_path lies under a 0700 directory)."""
    if reach_problem(tempfile.gettempdir(), nobody, X):
        pytest.skip(f"nobody cannot enter {tempfile.gettempdir()}")
    path = Path(tempfile.mkdtemp(prefix="job-sandbox-")).resolve()
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


# -- the environment -------------------------------------------------------------------------


@pytest.mark.scheduler_settings(job_env={"TEAM_BUCKET": "blue", "TZ": "UTC"})
async def test_a_job_sees_an_allow_list_and_the_operators_variables_only(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    script = write_script(tmp_path, "env.py", PRINT_ENV)
    await stack.create_job("env", script)
    run_id = await stack.start_run("env")
    run = await stack.wait_run("env", run_id)
    assert run.job_run_state == "SUCCEEDED", run.error_message

    env = json.loads(Path(f"{script}.env.json").read_text())
    leaked = {name for name in env if name in SECRETS or name.startswith(("SCHEDULER_", "PG"))}
    assert not leaked, f"the job saw the scheduler's {sorted(leaked)}"
    assert not any(value in json.dumps(env) for value in SECRETS.values())
    assert env["TEAM_BUCKET"] == "blue"
    assert env["TZ"] == "UTC"
    run_dir = stack.scheduler_settings.runs_dir / run_id
    assert env["HOME"] == str(run_dir)
    assert env["AWSGLUE_JOB_TYPE"] == "pythonshell"
    assert env["PATH"]
    allowed = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "JAVA_HOME", "SPARK_HOME", "TZ", "HOME"}
    allowed |= {"SPARK_CONF_DIR", "HADOOP_CONF_DIR", "PYTHONPATH", "TEAM_BUCKET"}
    # Python itself may add LC_CTYPE (locale coercion).
    assert {name for name in env if not name.startswith("AWSGLUE_")} <= allowed


def test_plan_environment_is_the_whole_environment(tmp_path: Path) -> None:
    script = write_script(tmp_path, "job.py", "pass\n")
    settings = CommandSettings(
        python=sys.executable,
        passed_env={"PATH": "/usr/bin:/bin", "JAVA_HOME": "/opt/java"},
        job_env={"HOME": "/srv/home", "PYTHONPATH": "/opt/lib"},
    )
    record = {"_Command": {"Name": "glueetl", "ScriptLocation": str(script)}}
    plan = plan_launch(record, "j", "jr_1", {}, tmp_path, settings)
    assert plan.env["JAVA_HOME"] == "/opt/java"
    assert plan.env["HOME"] == "/srv/home"  # the operator's choice wins over the default
    assert plan.env["PYTHONPATH"].endswith(os.pathsep + "/opt/lib")
    assert plan.env["TZ"] == "UTC"
    assert plan.env["LANG"] == "C.UTF-8"
    assert plan.env["PYSPARK_PYTHON"] == sys.executable
    assert not set(plan.env) & set(SECRETS)


def test_job_env_flags_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root the scheduler needs a run identity (the root policy); these settings are not the
    # point here.
    monkeypatch.setenv("SCHEDULER_RUN_AS", "root")
    monkeypatch.setenv("SCHEDULER_SCRIPT_ROOTS", "/")
    env_file = tmp_path / "job.env"
    env_file.write_text("# shared by every job\nA=from-file\n\nB=x=y, z\n")
    monkeypatch.setenv("SCHEDULER_JOB_ENV", "C=from-env,with-comma\nA=env-wins-over-file")
    monkeypatch.setenv("SCHEDULER_JOB_ENV_FILE", str(env_file))
    settings, _ = parse_settings([])
    assert dict(settings.job_env) == {
        "A": "env-wins-over-file",
        "B": "x=y, z",
        "C": "from-env,with-comma",
    }
    # Flags replace SCHEDULER_JOB_ENV (flags win over the environment), not the file.
    settings, _ = parse_settings(["--job-env", "D=#not a comment", "--job-env", "E="])
    assert dict(settings.job_env) == {
        "A": "from-file",
        "B": "x=y, z",
        "D": "#not a comment",
        "E": "",
    }
    # The caretaker reads the same settings back from its environment.
    monkeypatch.delenv("SCHEDULER_JOB_ENV_FILE")
    for name, value in settings_environment(settings, "INFO").items():
        monkeypatch.setenv(name, value)
    again, _ = parse_settings([])
    assert again.job_env == settings.job_env


@pytest.mark.parametrize(
    ("flag", "match"),
    [
        ("NOEQUALS", "expected KEY=VALUE"),
        ("1BAD=x", "not a variable name"),
        ("AWSGLUE_S3_ROOT=/x", "set by the scheduler"),
        ("PYSPARK_PYTHON=/x", "set by the scheduler"),
    ],
)
def test_bad_job_env_is_refused_at_start(
    flag: str, match: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_RUN_AS", "root")
    monkeypatch.setenv("SCHEDULER_SCRIPT_ROOTS", "/")
    with pytest.raises(SystemExit):
        parse_settings(["--job-env", flag])
    assert match in capsys.readouterr().err


# -- script roots, the scheduler's own files, SyntaxError leaks ------------------------------


async def test_a_secret_file_in_the_data_directory_is_never_run(stack: Stack) -> None:
    # As the internal secret `make run` writes: 0600, one line, in the data directory.
    secret = stack.data_dir / "internal-secret"
    secret.write_text("f00dfeedcafe0123456789abcdef\n")
    secret.chmod(0o600)
    await stack.create_job("leak", secret)
    run = await stack.wait_run("leak", await stack.start_run("leak"))
    assert run.job_run_state == "ERROR"
    assert "f00dfeed" not in run.error_message
    assert "one of the scheduler's own files" in run.error_message


async def test_script_outside_the_script_roots_ends_in_error_naming_nothing_of_it(
    stack: Stack, tmp_path: Path
) -> None:
    roots = tmp_path / "scripts"
    roots.mkdir()
    inside = write_script(roots, "ok.py", "print('fine')\n")
    outside = tmp_path / "shadow"
    outside.write_text(SHADOW_LINE + "\n")
    link = roots / "sneaky.py"
    link.symlink_to(outside)
    await stack.stop_scheduler()
    stack.scheduler_settings = dataclasses.replace(stack.scheduler_settings, script_roots=(roots,))
    await stack.start_scheduler()

    for name, location in [
        ("etc", "/etc/shadow"),
        ("copy", str(outside)),
        ("link", str(link)),
        ("dotdot", f"{roots}/../shadow"),
    ]:
        await stack.create_job(name, Path(location))
        run = await stack.wait_run(name, await stack.start_run(name))
        assert run.job_run_state == "ERROR", (name, run.error_message)
        assert "outside the script roots" in run.error_message
        assert "root:" not in run.error_message and "s3cr3t" not in run.error_message

    (roots / "dir.py").mkdir()
    await stack.create_job("dir", roots / "dir.py")
    run = await stack.wait_run("dir", await stack.start_run("dir"))
    assert run.job_run_state == "ERROR"
    assert "not a regular file" in run.error_message

    await stack.create_job("ok", inside)
    run = await stack.wait_run("ok", await stack.start_run("ok"))
    assert run.job_run_state == "SUCCEEDED", run.error_message


def test_extra_py_files_are_held_to_the_script_roots(tmp_path: Path) -> None:
    roots = tmp_path / "scripts"
    roots.mkdir()
    script = write_script(roots, "job.py", "pass\n")
    helper = write_script(roots, "helper.py", "pass\n")
    outside = write_script(tmp_path, "other.py", "pass\n")
    settings = CommandSettings(python=sys.executable, script_roots=(roots.resolve(),))
    record = {"_Command": {"Name": "glueetl", "ScriptLocation": str(script)}}
    plan = plan_launch(record, "j", "jr_1", {"--extra-py-files": str(helper)}, tmp_path, settings)
    assert plan.argv[plan.argv.index("--py-files") + 1] == str(helper)
    for extra in (f"{helper},{outside}", "/etc/shadow", f"file://{roots}/../other.py"):
        with pytest.raises(LaunchError, match=r"--extra-py-files .* is outside the script roots"):
            plan_launch(record, "j", "jr_1", {"--extra-py-files": extra}, tmp_path, settings)
        with pytest.raises(LaunchError, match=r"--extra-jars .* is outside the script roots"):
            plan_launch(record, "j", "jr_1", {"--extra-jars": extra}, tmp_path, settings)


def test_a_file_the_run_identity_cannot_read_is_refused_without_its_contents(
    open_dir: Path, nobody: Identity
) -> None:
    private = open_dir / "secrets.py"
    private.write_text(SHADOW_LINE + "\n")
    private.chmod(0o600)
    settings = CommandSettings(python=sys.executable, run_identity=nobody)
    for location in ("/etc/shadow", str(private)):
        record = {"_Command": {"Name": "pythonshell", "ScriptLocation": location}}
        with pytest.raises(LaunchError) as caught:
            plan_launch(record, "j", "jr_1", {}, open_dir, settings)
        message = str(caught.value)
        assert message == (
            f"ScriptLocation {location} cannot be read by the run: "
            f"nobody (uid {nobody.uid}) cannot read {location}"
        )
    private.chmod(0o644)
    record = {"_Command": {"Name": "pythonshell", "ScriptLocation": str(private)}}
    assert plan_launch(record, "j", "jr_1", {}, open_dir, settings).argv[1] == str(private)


def test_reach_follows_symlinks_and_every_directory_on_the_way(
    open_dir: Path, nobody: Identity
) -> None:
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    (closed / "job.py").write_text("pass\n")
    (closed / "job.py").chmod(0o644)
    link = open_dir / "link.py"
    link.symlink_to(closed / "job.py")
    problem = reach_problem(link, nobody, R)
    assert problem == (
        f"nobody (uid {nobody.uid}) cannot enter the directory {closed} (on the way to {link})"
    )
    closed.chmod(0o711)
    assert reach_problem(link, nobody, R) is None
    assert reach_problem(link, Identity(uid=0, gid=0), R) is None


def test_start_up_refuses_a_run_identity_that_cannot_reach_the_interpreter(
    open_dir: Path, nobody: Identity
) -> None:
    home = open_dir / "home"
    home.mkdir(mode=0o700)
    python = home / "python3"
    python.symlink_to(sys.executable)
    settings = CommandSettings(python=str(python), run_identity=nobody)
    with pytest.raises(ValueError, match=f"jobs run as nobody .*cannot enter the directory {home}"):
        check_run_reach(settings)


# -- files the services write or read ---------------------------------------------------------


async def test_services_files_are_private(stack: Stack, backend: str) -> None:
    data_dir = stack.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(stack.scheduler_settings.runs_dir.stat().st_mode) == 0o700
    if backend == "sqlite":
        for url in (stack.scheduler_url, stack.catalog_url):
            path = Path(url.split("///", 1)[1])
            for file in (path, Path(f"{path}-wal"), Path(f"{path}.lock")):
                if file.exists():
                    assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


async def test_an_access_keys_file_others_can_read_is_refused(stack: Stack, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"access_key_id": "AKID", "secret_access_key": "s"}]}))
    keys.chmod(0o644)
    settings = dataclasses.replace(stack.catalog_settings, access_keys=keys)
    with pytest.raises(ValueError, match=r"readable by group or others .*chmod 600"):
        async with CatalogApp(settings):
            pass


# -- who jobs run as --------------------------------------------------------------------------


def test_root_never_runs_jobs_as_root_unless_told() -> None:
    problem = root_policy_problem(euid=0, run_as=None, run_uids=None, script_roots=())
    assert problem is not None
    assert "--run-as" in problem and "--run-uids" in problem and "--run-as root" in problem
    assert root_policy_problem(euid=1000, run_as=None, run_uids=None, script_roots=()) is None
    assert root_policy_problem(euid=0, run_as=NOBODY, run_uids=None, script_roots=()) is None
    assert (
        root_policy_problem(euid=0, run_as=None, run_uids=(70000, 70999), script_roots=()) is None
    )
    root_only = root_policy_problem(euid=0, run_as="root", run_uids=None, script_roots=())
    assert root_only is not None and "--script-roots" in root_only
    assert (
        root_policy_problem(euid=0, run_as="0:0", run_uids=None, script_roots=(Path("/srv"),))
        is None
    )


def test_run_identity_of_the_run_identity_flags(nobody: Identity) -> None:
    assert run_identity(NOBODY, None, euid=1000) is None  # without root, runs are ours
    assert run_identity(None, None, euid=0) is None
    assert run_identity(NOBODY, None, euid=0) == nobody
    by_range = run_identity(NOBODY, (61100, 61199), euid=0)
    assert by_range == Identity(uid=61100, gid=61100, groups=frozenset({61100}))
    grouped = run_identity(None, (61100, 61199), str(nobody.gid), euid=0)
    assert grouped is not None and grouped.gid == nobody.gid


@pytest.mark.skipif(os.geteuid() != 0, reason="make run's default run identity applies to root")
def test_make_run_as_root_picks_nobody_or_says_it_runs_jobs_as_root(open_dir: Path) -> None:
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    env: dict[str, str] = {}
    message = devrun.default_run_identity(env, closed / "var")
    # make run must start for a new user: jobs run as root then, and it says so and why.
    assert message is not None and env["SCHEDULER_RUN_AS"] == "root"
    assert "jobs will run as ROOT" in message
    assert f"cannot enter the directory {closed}" in message
    assert "as a normal user" in message and "SCHEDULER_RUN_AS=USER" in message
    # An explicit choice is left alone.
    assert devrun.default_run_identity({"SCHEDULER_RUN_AS": "root"}, closed / "var") is None
