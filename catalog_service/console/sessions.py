"""Console sessions: login with an access key, the session cookie, and the CSRF token.

A session is a random id the browser holds in an HttpOnly, SameSite=Strict cookie; what it
stands for (the key's caller, its CSRF token, its expiry) is held here, in this process's
memory. So sessions are per catalog process and are lost when it restarts (operators log in
again), and a console behind a load balancer needs sticky sessions. The secret access key
never leaves the login form's POST: it is neither stored in a session nor put in a cookie or
URL.

Without access keys (a loopback-only catalog) every visitor gets a session without logging in,
so that every change still carries a CSRF token: a page on another site must not be able to
make the operator's browser start runs on localhost.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from catalog_service.gateway.access_keys import AccessKey
from catalog_service.identity import Caller

COOKIE = "glue_console_session"
# A session ends after this long without a request, and in any case after MAX_LIFETIME.
IDLE_TIMEOUT_SECONDS = 60 * 60
MAX_LIFETIME_SECONDS = 12 * 60 * 60
# Sessions held at once; beyond it the one closest to expiry is dropped. Each is ~0.5 KB, and
# anonymous ones are issued on any GET, so the cap bounds what a visitor can make us hold.
MAX_SESSIONS = 10_000
# Compared against when the key id is unknown, so that an unknown key id and a wrong secret
# take the same time.
_UNKNOWN_KEY_SECRET = secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    """One browser's session."""

    id: str
    """The cookie's value: 256 random bits."""
    csrf_token: str
    """Sent back in every form (and htmx header); a POST without it is refused."""
    caller: Caller | None
    """Who the console acts as: the logged-in key's caller; None when keys are not configured."""
    key_id: str | None
    """The logged-in access key id (shown in the page header); None when anonymous."""
    expires_at: float
    """Monotonic time after which the session is gone (idle timeout, moved on each use)."""
    ends_at: float
    """Monotonic time of its absolute end."""


class SessionStore:
    """The sessions of this process."""

    def __init__(
        self,
        keys: Mapping[str, AccessKey] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_SESSIONS,
    ) -> None:
        """Hold no sessions yet.

        Args:
            keys: The access keys a login may use; None: no login, every session anonymous.
            clock: Monotonic seconds (tests move it).
            capacity: Sessions held at once.
        """
        self._keys = keys
        self._clock = clock
        self._capacity = capacity
        self._sessions: dict[str, Session] = {}

    @property
    def requires_login(self) -> bool:
        """Whether a session must be opened by logging in with an access key."""
        return self._keys is not None

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id (its idle timeout moved on), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now >= session.expires_at:
            del self._sessions[session_id]
            return None
        session.expires_at = min(now + IDLE_TIMEOUT_SECONDS, session.ends_at)
        return session

    def open_anonymous(self) -> Session:
        """A session without login; only when no access keys are configured.

        Raises:
            PermissionError: Access keys are configured, so a session needs a login.
        """
        if self._keys is not None:
            raise PermissionError("the console requires a login with an access key")
        return self._open(None, None)

    def login(self, key_id: str, secret: str) -> Session | None:
        """A new session for a key whose secret matches; None when the key id or secret is
        wrong (which of the two is not said)."""
        if self._keys is None:
            return self._open(None, None)
        key = self._keys.get(key_id)
        expected = key.secret if key is not None else _UNKNOWN_KEY_SECRET
        # Constant time in the secret; encoded because compare_digest takes ASCII str only.
        matches = hmac.compare_digest(secret.encode(), expected.encode())
        if key is None or not matches:
            return None
        return self._open(key.caller, key.key_id)

    def end(self, session_id: str) -> None:
        """Log out: forget the session."""
        self._sessions.pop(session_id, None)

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        """Whether a POST's token is its session's (constant time)."""
        return token is not None and hmac.compare_digest(
            token.encode(), session.csrf_token.encode()
        )

    def __len__(self) -> int:
        return len(self._sessions)

    def _open(self, caller: Caller | None, key_id: str | None) -> Session:
        now = self._clock()
        if len(self._sessions) >= self._capacity:
            self._evict(now)
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            caller=caller,
            key_id=key_id,
            expires_at=now + IDLE_TIMEOUT_SECONDS,
            ends_at=now + MAX_LIFETIME_SECONDS,
        )
        self._sessions[session.id] = session
        return session

    def _evict(self, now: float) -> None:
        """Drop expired sessions; if still full, the one that would expire first."""
        for session_id in [s.id for s in self._sessions.values() if now >= s.expires_at]:
            del self._sessions[session_id]
        if len(self._sessions) >= self._capacity:
            first = min(self._sessions.values(), key=lambda s: s.expires_at)
            del self._sessions[first.id]
