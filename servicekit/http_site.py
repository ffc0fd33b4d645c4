"""Binding an aiohttp application: the one place that turns a taken port into a start-up error
naming the setting to change, and reads back the port bound for port 0."""

from __future__ import annotations

import ssl

from aiohttp import web


async def start_site(
    runner: web.AppRunner,
    host: str,
    port: int,
    *,
    setting: str,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Serve ``runner`` (already set up) on host:port; returns the bound port.

    Raises:
        OSError: the address cannot be bound; the runner is cleaned up and the message names
            the address and ``setting`` (the flag / environment variable that chooses it).
    """
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}); set {setting}") from None
    # aiohttp exposes the bound port (for port 0) only through the site's server.
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port
