"""The glueetl driver's notice when a job's GlueVersion is not the installed Spark's line."""

from __future__ import annotations

import pytest

from runtime.glue_driver import version_notice


@pytest.mark.parametrize(
    ("glue_version", "notice"),
    [
        ("5.0", None),
        ("5.1", None),
        ("", None),
        ("auto", None),
        ("6.0", "GlueVersion 6.0 is Spark 4.1 on AWS; this run uses the installed Spark 3.5.9"),
        ("4.0", "GlueVersion 4.0 is Spark 3.3 on AWS; this run uses the installed Spark 3.5.9"),
        ("9.9", ("GlueVersion 9.9 is not a Glue version this scheduler knows; this run uses "
                 "the installed Spark 3.5.9")),
    ],
)  # fmt: skip
def test_version_notice(glue_version: str, notice: str | None) -> None:
    assert version_notice(glue_version, "3.5.9") == notice
