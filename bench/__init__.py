"""Throughput and latency benchmark of the Glue scheduler, with the baselines its targets use.

``python -m bench`` (or ``make bench``) starts the catalog and scheduler services as
subprocesses on PostgreSQL and on SQLite, drives them with a closed-loop asyncio load generator
(64 calls in flight by default), measures the same machine's baselines (a bare grpc.aio echo
server, the echo server doing one SQLAlchemy ORM insert per call, bare interpreter spawns), and
prints one table plus the targets stated as ratios of those baselines. Then the trigger
figures (on PostgreSQL by default, against the scheduler alone): a 10,000-trigger burst due at
one minute boundary (missed fires, lateness), 100,000 triggers at rest (RSS) and across a
restart (time to SERVING and to the first fire), and the same numbers for plain APScheduler
3.11, with their own table and targets. ``--triggers-only`` / ``--skip-triggers`` run one part.

Modules:

- ``procs``: subprocesses, readiness, CPU accounting, throwaway PostgreSQL databases.
- ``load``: the closed-loop load generator and its statistics.
- ``echo_server``: the baseline echo server (run as ``python -m bench.echo_server``).
- ``baselines``: the echo, echo-plus-insert and spawn figures.
- ``glue_figures``: the figures measured against the two services.
- ``trigger_figures``: the trigger figures, against the scheduler service alone.
- ``apscheduler_baseline``: plain APScheduler 3.11 (run as ``python -m
  bench.apscheduler_baseline``, so that its RSS is its own).
- ``report``: the printed tables, the targets and the JSON file.
"""
