"""The baseline server: a bare grpc.aio unary echo, optionally with one ORM insert per call.

Run as ``python -m bench.echo_server --listen HOST:PORT [--database-url URL]``. The Echo
service (``/bench.Echo/Echo``) is registered with a generic handler and no serializers, so
requests and responses are raw bytes and no proto files are involved. With ``--database-url``
(``postgresql+asyncpg://...``) each call opens an ``AsyncSession``, adds one row of a tiny
declarative model and commits - the cost the benchmark's "echo + ORM insert" baseline names
(README, Benchmark). The engine's pool matches the services' (``pool_size=30, max_overflow=0``).

The standard health service reports SERVING once the table exists; SIGTERM stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import LargeBinary
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


class Base(DeclarativeBase):
    """The benchmark's declarative base."""


class EchoRow(Base):
    """One row per echoed call."""

    __tablename__ = "bench_echo"

    id: Mapped[int] = mapped_column(primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float]


async def serve(listen: str, database_url: str | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    engine: AsyncEngine | None = None
    if database_url:
        engine = create_async_engine(database_url, pool_size=30, max_overflow=0)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            async with sessions() as session:
                session.add(EchoRow(payload=request, created_at=time.time()))
                await session.commit()
            return request

    else:

        async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(listen)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)
    if engine is not None:
        await engine.dispose()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--database-url", default=None, help="insert one row per call here")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.database_url))


if __name__ == "__main__":
    main()
