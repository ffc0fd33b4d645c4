"""One local Spark session for the awsglue tests: local[2], loopback only, no UI.

``runtime/`` (where the scheduler puts ``awsglue`` for job runs) goes on this process's
sys.path and on the Python workers' PYTHONPATH, so that UDFs defined in awsglue import there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers.spark import POSTGRES_JAR, RUNTIME

__all__ = ["POSTGRES_JAR", "RUNTIME"]
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))


@pytest.fixture
def glue_context(spark: object) -> object:
    """A fresh GlueContext (no bookmarks until a test calls Job.init)."""
    from awsglue.context import GlueContext

    return GlueContext(spark.sparkContext)  # type: ignore[attr-defined]


@pytest.fixture
def s3_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AWSGLUE_S3_ROOT for the test."""
    root = tmp_path / "s3"
    root.mkdir()
    monkeypatch.setenv("AWSGLUE_S3_ROOT", str(root))
    return root
