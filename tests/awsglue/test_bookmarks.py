"""The bookmark state files, without Spark: what is read, staged and committed when."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from awsglue._bookmarks import (
    DISABLE,
    ENABLE,
    PAUSE,
    BookmarkError,
    Bookmarks,
    write_state,
)

FILES = {"source": "files", "files": {"s3://b/in/a.csv": {"mtime_ns": 1, "size": 2}}}


def _previous(tmp_path: Path) -> Path:
    path = tmp_path / "in.json"
    write_state(
        str(path),
        {"version": 1, "job_name": "j", "run_id": "jr_0", "transformations": {"src": FILES}},
    )
    return path


def test_enable_reads_previous_and_commits_previous_plus_staged(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    marks = Bookmarks(ENABLE, "j", "jr_1", str(_previous(tmp_path)), str(out))
    assert marks.entry("src") == FILES
    staged = {"source": "jdbc", "keys": ["id"], "sort_order": "asc", "last": [3]}
    marks.stage("db", staged)
    assert not out.exists(), "nothing is written before commit"
    assert marks.commit()
    assert json.loads(out.read_text()) == {
        "version": 1,
        "job_name": "j",
        "run_id": "jr_1",
        "transformations": {"src": FILES, "db": staged},
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bookmark-")] == []


def test_pause_reads_but_never_writes(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    marks = Bookmarks(PAUSE, "j", "jr_1", str(_previous(tmp_path)), str(out))
    assert marks.entry("src") == FILES
    marks.stage("src", {"source": "files", "files": {}})
    assert not marks.commit()
    assert not out.exists()


def test_disable_ignores_state_and_never_writes(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    marks = Bookmarks(DISABLE, "j", "jr_1", str(_previous(tmp_path)), str(out))
    assert not marks.active
    assert marks.entry("src") is None
    assert not marks.commit()
    assert not out.exists()


def test_missing_in_file_is_no_state_and_missing_out_is_a_noop(tmp_path: Path) -> None:
    marks = Bookmarks(ENABLE, "j", "jr_1", str(tmp_path / "absent.json"), None)
    assert marks.entry("src") is None
    marks.stage("src", FILES)
    assert not marks.commit()
    assert list(tmp_path.iterdir()) == []


def test_from_env_uses_the_two_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.json"
    monkeypatch.setenv("AWSGLUE_BOOKMARK_IN", str(_previous(tmp_path)))
    monkeypatch.setenv("AWSGLUE_BOOKMARK_OUT", str(out))
    marks = Bookmarks.from_env(ENABLE, "j", "jr_2")
    assert marks.entry("src") == FILES
    marks.commit()
    assert json.loads(out.read_text())["run_id"] == "jr_2"


def test_commit_replaces_an_existing_out_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    marks = Bookmarks(ENABLE, "j", "jr_1", None, str(out))
    marks.stage("src", FILES)
    marks.commit()
    assert json.loads(out.read_text())["transformations"] == {"src": FILES}


@pytest.mark.parametrize(
    "content", ["not json", '{"version": 99, "transformations": {}}', '{"version": 1}']
)
def test_unusable_state_fails_loudly(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "in.json"
    bad.write_text(content)
    with pytest.raises(BookmarkError):
        Bookmarks(ENABLE, "j", "jr_1", str(bad), None)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown job bookmark option"):
        Bookmarks("job-bookmark-maybe", "j", None)
