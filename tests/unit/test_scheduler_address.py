"""The catalog's --scheduler value: one address, or a failover list of replicas."""

from __future__ import annotations

import pytest

from catalog_service.cli import parse_settings
from catalog_service.settings import scheduler_target


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("127.0.0.1:50052", "127.0.0.1:50052"),
        ("scheduler.internal:50052", "scheduler.internal:50052"),
        ("dns:///scheduler.internal:50052", "dns:///scheduler.internal:50052"),
        ("10.0.0.1:50052, 10.0.0.2:50052", "ipv4:10.0.0.1:50052,10.0.0.2:50052"),
        ("[::1]:1,[fe80::1]:2", "ipv6:[::1]:1,[fe80::1]:2"),
    ],
)
def test_targets(given: str, target: str) -> None:
    assert scheduler_target(given) == target


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "empty"),
        ("a.internal:1,b.internal:2", "dns:///"),
        ("10.0.0.1:1,[::1]:2", "all IPv4 or all IPv6"),
        ("10.0.0.1:1,10.0.0.2:x", "no port"),
    ],
)
def test_malformed_lists_are_refused_at_start_up(
    given: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=says):
        scheduler_target(given)
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--scheduler", given])
    assert exit_info.value.code == 2
    assert "--scheduler" in capsys.readouterr().err
