"""Throughput and latency benchmark of the Glue scheduler, with the baselines its targets use.

``python -m bench`` (or ``make bench``) starts the catalog and scheduler services as
subprocesses on PostgreSQL and on SQLite, drives them with a closed-loop asyncio load generator
(64 calls in flight by default), measures the same machine's baselines (a bare grpc.aio echo
server, the echo server doing one SQLAlchemy ORM insert per call, bare interpreter spawns), and
prints one table plus the targets stated as ratios of those baselines.

Modules:

- ``procs``: subprocesses, readiness, CPU accounting, throwaway PostgreSQL databases.
- ``load``: the closed-loop load generator and its statistics.
- ``echo_server``: the baseline echo server (run as ``python -m bench.echo_server``).
- ``baselines``: the echo, echo-plus-insert and spawn figures.
- ``glue_figures``: the figures measured against the two services.
- ``report``: the printed table, the targets and the JSON file.
"""
