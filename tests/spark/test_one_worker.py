"""The suite's JVM tests share one pytest-xdist worker (``tests/conftest.py``): under
``--dist loadgroup`` (``make test``) each carries its group in its node id, which is what the
scheduler of workers goes by. pytest 9.2 with pytest-xdist 3.8 dropped that suffix without a
word (pytest-dev/pytest-xdist#1386), and the JVM tests spread over every worker."""

from __future__ import annotations

import pytest


def test_a_jvm_test_is_in_the_spark_group_under_loadgroup(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist's workers
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@spark"), request.node.nodeid
