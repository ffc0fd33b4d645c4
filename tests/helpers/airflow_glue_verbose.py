"""Run in Airflow's own virtualenv (make airflow-venv): GlueJobHook.job_completion(verbose=True)
against the gateway, printing the task log Airflow would show to stdout.

Usage: python airflow_glue_verbose.py JOB_NAME RUN_ID (the connection comes from the
environment: AIRFLOW_CONN_AWS_DEFAULT with the gateway as endpoint_url).

Not imported by the test suite (Airflow is not installed in .venv); only run as a script.
"""

from __future__ import annotations

import json
import logging
import sys


def main() -> int:
    """Wait for the run as Airflow's GlueJobOperator(verbose=True) does; print its final state."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

    job_name, run_id = sys.argv[1], sys.argv[2]
    hook = GlueJobHook(aws_conn_id="aws_default", job_name=job_name, job_poll_interval=1)
    result = hook.job_completion(job_name, run_id, verbose=True)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
