"""ReplayCache on its own: first use, replay, expiry with the signature's window, the cap."""

from __future__ import annotations

import pytest

from catalog_service.gateway.replay import Claim, ReplayCache


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_signature_is_fresh_once_then_replayed_until_it_expires() -> None:
    clock = Clock(1_000.0)
    cache = ReplayCache(10, clock=clock)
    assert cache.claim(b"a", 1_900.0) is Claim.FRESH
    assert cache.claim(b"a", 1_900.0) is Claim.REPLAYED
    clock.now = 1_899.5
    assert cache.claim(b"a", 1_900.0) is Claim.REPLAYED
    # Past its expiry the clock check refuses the signature, so the cache lets it go.
    clock.now = 1_900.0
    assert cache.claim(b"b", 2_800.0) is Claim.FRESH
    assert len(cache) == 1
    assert cache.claim(b"a", 1_900.0) is Claim.FRESH  # (the verifier would refuse it first)


def test_at_capacity_new_signatures_are_refused_not_evicted() -> None:
    clock = Clock(0.0)
    cache = ReplayCache(2, clock=clock)
    assert cache.claim(b"a", 100.0) is Claim.FRESH
    assert cache.claim(b"b", 200.0) is Claim.FRESH
    assert cache.claim(b"c", 300.0) is Claim.FULL
    # Nothing was evicted: both recorded signatures are still refused.
    assert cache.claim(b"a", 100.0) is Claim.REPLAYED
    assert cache.claim(b"b", 200.0) is Claim.REPLAYED
    clock.now = 100.0
    assert cache.claim(b"c", 300.0) is Claim.FRESH


def test_a_long_idle_gap_is_jumped_over() -> None:
    clock = Clock(0.0)
    cache = ReplayCache(2, clock=clock)
    assert cache.claim(b"a", 900.0) is Claim.FRESH
    clock.now = 10.0**9  # decades later: one sweep up to the last bucket, then a jump
    assert cache.claim(b"b", clock.now + 900) is Claim.FRESH
    assert len(cache) == 1


def test_an_already_expired_signature_is_not_held() -> None:
    cache = ReplayCache(2, clock=Clock(500.0))
    assert cache.claim(b"a", 499.0) is Claim.FRESH
    assert len(cache) == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReplayCache(0)
