"""The console's pure parts: the chain layout, sessions, and next fire times."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog_service.access.policy import parse_policy
from catalog_service.console import graph
from catalog_service.console.sessions import (
    IDLE_TIMEOUT_SECONDS,
    MAX_LIFETIME_SECONDS,
    SessionStore,
)
from catalog_service.console.views import next_fires
from catalog_service.gateway.access_keys import AccessKey


def _conditional(name: str, watched: list[str], started: str) -> dict[str, object]:
    return {
        "Name": name,
        "Type": "CONDITIONAL",
        "State": "ACTIVATED",
        "Predicate": {"Conditions": [{"JobName": j, "State": "SUCCEEDED"} for j in watched]},
        "Actions": [{"JobName": started}],
    }


def test_a_chain_is_ranked_left_to_right_and_a_join_after_both_branches() -> None:
    layout = graph.layout(
        [
            {"Name": "nightly", "Type": "SCHEDULED", "State": "ACTIVATED",
             "Actions": [{"JobName": "a"}, {"JobName": "b"}]},
            _conditional("after-a", ["a"], "a2"),
            _conditional("join", ["a2", "b"], "report"),
        ]
    )  # fmt: skip
    x = {node.name: node.x for node in layout.nodes}
    assert x["nightly"] < x["a"] == x["b"] < x["after-a"] < x["a2"] < x["join"] < x["report"]
    assert len(layout.edges) == 7
    assert sorted(e.label for e in layout.edges if e.label) == ["SUCCEEDED"] * 3
    assert all(n.x + graph.NODE_WIDTH <= layout.width for n in layout.nodes)
    assert all(n.y + graph.NODE_HEIGHT <= layout.height for n in layout.nodes)
    # No two nodes overlap.
    assert len({(n.x, n.y) for n in layout.nodes}) == len(layout.nodes)


def test_a_cycle_is_drawn_without_looping_forever() -> None:
    layout = graph.layout([_conditional("again", ["loop"], "loop")])
    assert {n.name for n in layout.nodes} == {"again", "loop"}
    assert len(layout.edges) == 2


def test_long_names_are_shortened_in_the_box_only() -> None:
    name = "x" * 60
    (node,) = [n for n in graph.layout([_conditional("t", [name], name)]).nodes if n.kind == "job"]
    assert node.name == name and len(node.label) == graph.LABEL_CHARS


POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "glue:Get*", "Resource": "*"}],
}
KEY = AccessKey("AKIDONE", "the-secret", "arn:aws:iam::1:user/one", parse_policy(POLICY, "test"))


def test_a_login_needs_the_keys_secret_and_yields_its_caller() -> None:
    store = SessionStore({KEY.key_id: KEY})
    assert store.requires_login
    assert store.login("AKIDONE", "the-secreT") is None
    assert store.login("AKIDOTHER", "the-secret") is None
    session = store.login("AKIDONE", "the-secret")
    assert session is not None
    assert session.caller == KEY.caller and session.key_id == "AKIDONE"
    assert "the-secret" not in (session.id + session.csrf_token)
    assert store.get(session.id) is session
    assert store.csrf_ok(session, session.csrf_token)
    assert not store.csrf_ok(session, None)
    assert not store.csrf_ok(session, session.csrf_token[:-1])
    store.end(session.id)
    assert store.get(session.id) is None


def test_sessions_expire_when_idle_and_at_their_end() -> None:
    now = [0.0]
    store = SessionStore(None, clock=lambda: now[0])
    session = store.open_anonymous()
    # Used every 59 minutes, it lives until its absolute end and not beyond.
    while now[0] + IDLE_TIMEOUT_SECONDS - 60 < MAX_LIFETIME_SECONDS:
        now[0] += IDLE_TIMEOUT_SECONDS - 60
        assert store.get(session.id) is session
    now[0] = MAX_LIFETIME_SECONDS
    assert store.get(session.id) is None
    idle = store.open_anonymous()
    now[0] += IDLE_TIMEOUT_SECONDS
    assert store.get(idle.id) is None


def test_the_store_holds_at_most_its_capacity() -> None:
    now = [0.0]
    store = SessionStore(None, clock=lambda: now[0], capacity=3)
    first = store.open_anonymous()
    for _ in range(5):
        now[0] += 1
        store.open_anonymous()
    assert len(store) == 3
    assert store.get(first.id) is None


def test_next_fires_of_scheduled_triggers_only() -> None:
    at = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    scheduled = {"Type": "SCHEDULED", "State": "ACTIVATED", "Schedule": "cron(0 12 1 * ? 2027)"}
    fires = next_fires(scheduled, at)
    assert fires.times == [datetime(2027, m, 1, 12, tzinfo=UTC) for m in (1, 2, 3)]
    assert fires.note == ""
    last = next_fires({**scheduled, "Schedule": "cron(0 12 1 12 ? 2027)"}, at)
    assert len(last.times) == 1 and "no more" in last.note
    assert "not activated" in next_fires({**scheduled, "State": "CREATED"}, at).note
    assert next_fires({"Type": "ON_DEMAND", "State": "CREATED"}, at).times == []
