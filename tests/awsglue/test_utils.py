"""getResolvedOptions, the pythonshell import guard and S3 path mapping: no Spark needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from awsglue._paths import local_path, s3_uri_of
from awsglue.utils import GlueArgumentError, getResolvedOptions

from tests.awsglue.conftest import RUNTIME

SCRIPT = "script.py"


def test_resolves_required_options_in_both_spellings() -> None:
    args = getResolvedOptions(
        [SCRIPT, "--JOB_NAME", "nightly", "--input-path=s3://b/in", "--JOB_RUN_ID", "jr_1"],
        ["JOB_NAME", "input-path"],
    )
    assert args["JOB_NAME"] == "nightly"
    assert args["input_path"] == "s3://b/in"
    assert args["JOB_RUN_ID"] == "jr_1"
    # Always present, None when absent; the bookmark option defaults to disable.
    assert args["JOB_ID"] is None
    assert args["TempDir"] is None
    assert args["job_bookmark_option"] == "job-bookmark-disable"


def test_missing_required_option_raises() -> None:
    with pytest.raises(GlueArgumentError, match="JOB_NAME"):
        getResolvedOptions([SCRIPT, "--other", "x"], ["JOB_NAME"])


def test_unrequested_arguments_are_ignored_and_job_name_only_when_asked() -> None:
    args = getResolvedOptions([SCRIPT, "--JOB_NAME", "j", "--extra", "1"], [])
    assert "JOB_NAME" not in args
    assert "extra" not in args


def test_bookmark_option_and_old_continuation_option() -> None:
    enabled = getResolvedOptions([SCRIPT, "--job-bookmark-option", "job-bookmark-enable"], [])
    assert enabled["job_bookmark_option"] == "job-bookmark-enable"
    old = getResolvedOptions([SCRIPT, "--continuation-option", "continuation-readonly"], [])
    assert old["job_bookmark_option"] == "job-bookmark-pause"


def test_reserved_options_cannot_be_asked_for() -> None:
    with pytest.raises(RuntimeError, match="reserved"):
        getResolvedOptions([SCRIPT], ["JOB_RUN_ID"])
    with pytest.raises(RuntimeError, match="reserved"):
        getResolvedOptions([SCRIPT], ["job-bookmark-option"])


def test_bookmark_range_needs_pause() -> None:
    argv = [SCRIPT, "--job-bookmark-from", "jr_1", "--job-bookmark-to", "jr_2"]
    with pytest.raises(RuntimeError, match="Invalid option"):
        getResolvedOptions(argv, [])
    paused = getResolvedOptions([*argv, "--job-bookmark-option", "job-bookmark-pause"], [])
    assert (paused["job_bookmark_from"], paused["job_bookmark_to"]) == ("jr_1", "jr_2")


def test_temp_dirs_mirror_each_other() -> None:
    args = getResolvedOptions([SCRIPT, "--TempDir", "s3://b/tmp"], [])
    assert args["RedshiftTempDir"] == "s3://b/tmp"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWSGLUE_")}
    clean.update(env, PYTHONPATH=str(RUNTIME))
    return subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "module", ["awsglue.context", "awsglue.job", "awsglue.dynamicframe", "awsglue.transforms"]
)
def test_pythonshell_guard_names_the_module_and_the_fix(module: str) -> None:
    code = f"""
try:
    import {module}
except ImportError as exc:
    print("ImportError:", exc)
else:
    print("imported")
"""
    result = _python(code, AWSGLUE_JOB_TYPE="pythonshell")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"ImportError: pythonshell jobs have no Spark: {module} needs Spark; "
        'run this script as a glueetl job (Command.Name "glueetl")'
    )


def test_utils_imports_without_pyspark_in_a_pythonshell_job() -> None:
    # sys.modules[name] = None makes any import of pyspark fail, as on a machine without it.
    code = """
import sys
sys.modules["pyspark"] = None
from awsglue.utils import getResolvedOptions
import awsglue
print(getResolvedOptions(["s.py", "--JOB_NAME", "j"], ["JOB_NAME"])["JOB_NAME"])
"""
    result = _python(code, AWSGLUE_JOB_TYPE="pythonshell")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "j"


def test_glueetl_imports_work_without_the_guard() -> None:
    result = _python("import awsglue.context, awsglue.job, awsglue.transforms; print('ok')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("scheme", ["s3", "s3a", "s3n"])
def test_s3_uris_map_under_the_root(
    scheme: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWSGLUE_S3_ROOT", str(tmp_path))
    assert local_path(f"{scheme}://bucket/a/b.csv") == f"{tmp_path}/bucket/a/b.csv"
    assert local_path(f"{scheme}://bucket/dir/") == f"{tmp_path}/bucket/dir/"
    assert local_path(f"{scheme}://bucket") == f"{tmp_path}/bucket"


def test_file_uris_and_plain_paths_are_used_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWSGLUE_S3_ROOT", raising=False)
    assert local_path("file:///data/in/x.csv") == "/data/in/x.csv"
    assert local_path("file://localhost/data/in") == "/data/in"
    assert local_path("/data/in") == "/data/in"


def test_s3_without_root_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWSGLUE_S3_ROOT", raising=False)
    with pytest.raises(ValueError, match="AWSGLUE_S3_ROOT is not set"):
        local_path("s3://bucket/key")


def test_s3_keys_cannot_climb_out_of_the_bucket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWSGLUE_S3_ROOT", str(tmp_path))
    with pytest.raises(ValueError, match="climbs out"):
        local_path("s3://bucket/../other/key")
    with pytest.raises(ValueError, match="only s3://"):
        local_path("hdfs://namenode/x")


def test_uri_of_a_listed_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWSGLUE_S3_ROOT", str(tmp_path))
    base = local_path("s3://b/in/")
    assert s3_uri_of("s3://b/in/", base, f"{tmp_path}/b/in/day=1/x.csv") == "s3://b/in/day=1/x.csv"
