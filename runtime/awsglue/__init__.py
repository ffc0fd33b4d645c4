"""A self-hosted implementation of AWS Glue's ``awsglue`` library on public PySpark APIs.

Scripts written for AWS Glue import it unchanged (``from awsglue.context import GlueContext``).
``awsglue.utils`` works without Spark (pythonshell jobs); everything else needs PySpark. See
docs/awsglue.md for the supported surface and the scheduler contracts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DynamicFrame"]


def __getattr__(name: str) -> Any:
    # AWS's package exposes DynamicFrame at the top; importing it eagerly would pull in PySpark
    # and break ``awsglue.utils`` for pythonshell jobs, so it is resolved on first access.
    if name == "DynamicFrame":
        from awsglue.dynamicframe import DynamicFrame

        return DynamicFrame
    raise AttributeError(f"module 'awsglue' has no attribute {name!r}")
