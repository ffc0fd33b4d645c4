"""The internal API's secret file, exposure rule, `make run`'s secret and the shared limits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import botocore.session
import pytest

from servicekit.devrun import internal_secret_file
from servicekit.internal_auth import MutualTls, check_exposure, load_secret
from servicekit.internal_rules import GLUE_LIMITS, NAME_PATTERN, check_name


def test_make_run_creates_the_secret_once_private_and_reuses_it(tmp_path: Path) -> None:
    path = internal_secret_file(tmp_path / "var")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = load_secret(path)
    assert len(first) == 64
    assert internal_secret_file(tmp_path / "var") == path
    assert load_secret(path) == first


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        (0o604, "s3cret\n", "chmod 600"),
        (0o600, "  \n", "is empty"),
        (0o600, "two words\n", "printable ASCII"),
    ],
)
def test_bad_secret_files_are_refused_naming_the_file(
    tmp_path: Path, mode: int, text: str, expected: str
) -> None:
    path = tmp_path / "secret"
    path.write_text(text)
    os.chmod(path, mode)
    with pytest.raises(ValueError, match=expected) as refused:
        load_secret(path)
    assert str(path) in str(refused.value)


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the internal secret file"):
        load_secret(tmp_path / "nope")


@pytest.mark.parametrize("listen", ["127.0.0.1:50052", "[::1]:1", "localhost:5"])
def test_loopback_needs_nothing(listen: str) -> None:
    check_exposure(listen, secret=False, mutual_tls=False, insecure=False)


@pytest.mark.parametrize("listen", ["0.0.0.0:50052", "[::]:1", "10.0.0.5:5", "sched:5"])
def test_an_open_address_needs_a_guard(listen: str) -> None:
    with pytest.raises(ValueError, match="--internal-secret"):
        check_exposure(listen, secret=False, mutual_tls=False, insecure=False)
    check_exposure(listen, secret=True, mutual_tls=False, insecure=False)
    check_exposure(listen, secret=False, mutual_tls=True, insecure=False)
    check_exposure(listen, secret=False, mutual_tls=False, insecure=True)


def test_mutual_tls_needs_all_three_files(tmp_path: Path) -> None:
    assert MutualTls.from_paths(None, None, None) is None
    with pytest.raises(ValueError, match="--internal-key"):
        MutualTls.from_paths(tmp_path / "ca", tmp_path / "cert", None)


def test_the_shared_limits_are_glues() -> None:
    model = botocore.session.get_session().get_service_model("glue")
    for shape_name, (low, high) in GLUE_LIMITS.items():
        metadata = model.shape_for(shape_name).metadata
        assert (metadata.get("min"), metadata.get("max")) == (low, high), shape_name
    # The pattern NAME_PATTERN spells is NameString's.
    assert model.shape_for("NameString").metadata["pattern"] == (
        "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*"
    )
    assert NAME_PATTERN.fullmatch("a\tb \U0001f600 \ufffd")
    for bad in ("a\nb", "a\x00", "a\x1f"):
        assert not NAME_PATTERN.fullmatch(bad)
    check_name("x" * 255, "name")
