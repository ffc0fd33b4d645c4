"""GlueContext: the entry point of Glue scripts, on a plain SparkSession.

Follows the AWS page "GlueContext class"
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-glue-context.html)
for the script-facing surface: ``spark_session``, ``get_logger()``, ``create_dynamic_frame`` /
``create_data_frame`` / ``write_dynamic_frame`` and their ``*_from_options`` aliases. The Data
Catalog variants raise, naming the ``from_options`` form to use instead.
"""

# ruff: noqa: N802 - method names are AWS Glue's public API

from __future__ import annotations

import logging
import sys
from typing import Any

from awsglue._guard import require_spark

require_spark("awsglue.context")

from pyspark import SparkContext  # noqa: E402 - after the pythonshell guard, on purpose
from pyspark.sql import DataFrame, SparkSession  # noqa: E402

from awsglue import _io  # noqa: E402
from awsglue._bookmarks import Bookmarks  # noqa: E402
from awsglue.dynamicframe import (  # noqa: E402
    DynamicFrame,
    DynamicFrameReader,
    DynamicFrameWriter,
)

__all__ = ["DataFrameReader", "GlueContext", "GlueLogger"]

_LOGGER_NAME = "awsglue"


class GlueLogger:
    """What ``get_logger()`` returns: info/warn/error to stderr (AWS's goes to CloudWatch)."""

    def __init__(self, logger: logging.Logger) -> None:
        """Wrap a Python logger.

        Args:
            logger: the logger to write to.
        """
        self._logger = logger

    def info(self, message: Any) -> None:
        """Log at INFO.

        Args:
            message: the message.
        """
        self._logger.info("%s", message)

    def warn(self, message: Any) -> None:
        """Log at WARN (Glue's spelling).

        Args:
            message: the message.
        """
        self._logger.warning("%s", message)

    warning = warn

    def error(self, message: Any) -> None:
        """Log at ERROR.

        Args:
            message: the message.
        """
        self._logger.error("%s", message)

    def debug(self, message: Any) -> None:
        """Log at DEBUG.

        Args:
            message: the message.
        """
        self._logger.debug("%s", message)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after start-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the job
            self.handleError(record)


def _awsglue_logger() -> logging.Logger:
    logger = logging.getLogger(_LOGGER_NAME)
    # One stderr handler, however many GlueContexts a script makes; the scheduler keeps a run's
    # stderr as its log.
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class DataFrameReader:
    """``glueContext.create_data_frame``: like create_dynamic_frame, returning DataFrames."""

    def __init__(self, glue_context: GlueContext) -> None:
        """Bind to a GlueContext.

        Args:
            glue_context: the GlueContext.
        """
        self._glue_context = glue_context

    def from_options(
        self,
        connection_type: str,
        connection_options: dict[str, Any] | None = None,
        format: str | None = None,
        format_options: dict[str, Any] | None = None,
        transformation_ctx: str = "",
        **kwargs: Any,
    ) -> DataFrame:
        """Read a source as a DataFrame (see ``DynamicFrameReader.from_options``).

        Args:
            connection_type: s3, file, postgresql or mysql.
            connection_options: Glue's connection options.
            format: the file format.
            format_options: Glue's format options.
            transformation_ctx: the bookmark key.
            **kwargs: accepted and ignored.
        """
        return _io.read(
            self._glue_context,
            connection_type,
            connection_options,
            format,
            format_options,
            transformation_ctx,
        )

    def from_catalog(self, *args: Any, **kwargs: Any) -> DataFrame:
        """Not available: there is no Data Catalog.

        Args:
            *args: ignored.
            **kwargs: ignored.

        Raises:
            NotImplementedError: always, saying what to use instead.
        """
        raise NotImplementedError(
            _io.NO_CATALOG.format(
                what="create_data_frame.from_catalog", instead="create_data_frame.from_options"
            )
        )


class GlueContext:
    """Glue's context over a SparkSession: readers, writers, logger and job bookmarks."""

    def __init__(
        self,
        sparkContext: SparkContext | SparkSession | None = None,  # noqa: N803 - Glue's name
        **options: Any,
    ) -> None:
        """Make the context for a SparkContext (as scripts do) or a SparkSession.

        Args:
            sparkContext: the SparkContext; a SparkSession works too (Spark Connect has no
                SparkContext); None uses the active session.
            **options: accepted for compatibility.
        """
        session: Any = sparkContext
        if not hasattr(session, "createDataFrame"):
            # Not a SparkSession (classic, or Spark Connect's own class in Spark 3.5):
            # getOrCreate reuses the SparkContext the script made, with its configuration.
            session = SparkSession.builder.getOrCreate()
        self.spark_session: SparkSession = session
        self._sc = sparkContext if isinstance(sparkContext, SparkContext) else None
        self.create_dynamic_frame = DynamicFrameReader(self)
        self.create_data_frame = DataFrameReader(self)
        self.write_dynamic_frame = DynamicFrameWriter(self)
        # Set by Job.init; until then sources read everything.
        self._bookmarks: Bookmarks | None = None
        self._logger = GlueLogger(_awsglue_logger())

    @property
    def sparkSession(self) -> SparkSession:
        """The SparkSession (SQLContext's name for it; scripts mostly use spark_session)."""
        return self.spark_session

    def get_logger(self) -> GlueLogger:
        """A logger with info/warn/error, writing to stderr."""
        return self._logger

    def create_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Alias of ``create_dynamic_frame.from_options``.

        Args:
            *args: as there.
            **kwargs: as there.
        """
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def create_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available (no Data Catalog); raises, naming from_options instead.

        Args:
            *args: ignored.
            **kwargs: ignored.
        """
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def create_data_frame_from_options(self, *args: Any, **kwargs: Any) -> DataFrame:
        """Alias of ``create_data_frame.from_options``.

        Args:
            *args: as there.
            **kwargs: as there.
        """
        return self.create_data_frame.from_options(*args, **kwargs)

    def create_data_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DataFrame:
        """Not available (no Data Catalog); raises, naming from_options instead.

        Args:
            *args: ignored.
            **kwargs: ignored.
        """
        return self.create_data_frame.from_catalog(*args, **kwargs)

    def write_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Alias of ``write_dynamic_frame.from_options``.

        Args:
            *args: as there.
            **kwargs: as there.
        """
        return self.write_dynamic_frame.from_options(*args, **kwargs)

    def write_from_options(self, frame_or_dfc: Any, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Alias of ``write_dynamic_frame.from_options`` (AWS's generic write).

        Args:
            frame_or_dfc: the frame.
            *args: as there.
            **kwargs: as there.
        """
        return self.write_dynamic_frame.from_options(frame_or_dfc, *args, **kwargs)

    def write_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available (no Data Catalog); raises, naming from_options instead.

        Args:
            *args: ignored.
            **kwargs: ignored.
        """
        return self.write_dynamic_frame.from_catalog(*args, **kwargs)

    def write_dynamic_frame_from_jdbc_conf(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available (Glue connections live in the Data Catalog); raises.

        Args:
            *args: ignored.
            **kwargs: ignored.
        """
        return self.write_dynamic_frame.from_jdbc_conf(*args, **kwargs)
