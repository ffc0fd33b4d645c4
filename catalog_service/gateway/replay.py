"""ReplayCache: verified signatures of state-changing requests, refused a second time.

SigV4 alone lets anyone who captured a signed request (a log, a proxy, plain HTTP) send it
again, unchanged, for as long as its date is within the allowed skew (15 minutes either way).
For a read that is harmless; for StartJobRun it starts another run. So the gateway remembers
each verified signature of a state-changing request until it expires, and refuses it again.

Invariants:

- Only verified signatures are recorded, so a forger cannot fill the cache.
- An entry lives until its signature's own expiry (signing time + skew), never longer: the
  signature is refused by the clock after that, so remembering it would be waste.
- Memory is bounded by ``capacity``. At the cap, new state-changing requests are refused
  (``claim`` returns ``FULL``) until entries expire, never evicted: evicting the oldest would
  let a key holder flood the cache to reopen the window for a captured request. The refusal
  is retryable (ThrottlingException), so boto3 backs off and re-signs.
- Each ``claim`` is O(1) amortized: entries sit in per-second expiry buckets, and each second
  of the clock is swept once (an idle gap with an empty cache is jumped over).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable


class Claim(enum.Enum):
    """The outcome of claiming a signature."""

    FRESH = "fresh"
    """First use: recorded, the request may proceed."""
    REPLAYED = "replayed"
    """Already used within its validity window: refuse."""
    FULL = "full"
    """Not seen, but the cache is at capacity: refuse, retryably, and record nothing."""


class ReplayCache:
    """Signatures seen until they expire, with a fixed capacity."""

    def __init__(self, capacity: int, *, clock: Callable[[], float] = time.time) -> None:
        """Build an empty cache.

        Args:
            capacity: The most signatures held at once.
            clock: Wall-clock seconds since the epoch (signature expiry is wall-clock time).
        """
        if capacity < 1:
            raise ValueError(f"replay cache capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._clock = clock
        self._seen: set[bytes] = set()
        # Expiry second (rounded up) -> the signatures that expire in it.
        self._buckets: dict[int, list[bytes]] = {}
        self._swept = math.floor(clock())

    def __len__(self) -> int:
        """How many signatures are held now (expired ones included until the next claim)."""
        return len(self._seen)

    def claim(self, signature: bytes, expires_at: float) -> Claim:
        """Record a verified signature on its first use.

        Synchronous on purpose: the test and the insert happen with no await between them,
        so two concurrent copies of one request cannot both be FRESH.

        Args:
            signature: The verified signature (raw bytes).
            expires_at: When the signature stops being accepted, in epoch seconds.

        Returns:
            FRESH (recorded), REPLAYED or FULL.
        """
        self._expire(math.floor(self._clock()))
        if signature in self._seen:
            return Claim.REPLAYED
        if len(self._seen) >= self.capacity:
            return Claim.FULL
        second = math.ceil(expires_at)
        if second <= self._swept:
            # Already expired (the verifier's clock and ours straddled a second): the clock
            # check refuses it from now on, so there is nothing to remember.
            return Claim.FRESH
        self._seen.add(signature)
        self._buckets.setdefault(second, []).append(signature)
        return Claim.FRESH

    def _expire(self, now: int) -> None:
        """Drop every bucket whose second has passed."""
        while self._swept < now:
            if not self._buckets:
                self._swept = now
                return
            self._swept += 1
            for signature in self._buckets.pop(self._swept, ()):
                self._seen.discard(signature)
