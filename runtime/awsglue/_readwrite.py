"""``glueContext.create_dynamic_frame`` / ``write_dynamic_frame`` (DynamicFrameReader/Writer).

AWS pages "DynamicFrameReader class" and "DynamicFrameWriter class"
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-dynamic-frame-
reader.html). The catalog variants raise: there is no Data Catalog here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from awsglue import _io
from awsglue._csvtypes import CsvTyping, PendingFrame, write_checked

if TYPE_CHECKING:
    from awsglue.context import GlueContext
    from awsglue.dynamicframe import DynamicFrame

__all__ = ["DynamicFrameReader", "DynamicFrameWriter"]


def _frame(df: DataFrame | CsvTyping, glue_context: GlueContext, name: str) -> DynamicFrame:
    # Imported here: awsglue.dynamicframe imports this module.
    from awsglue.dynamicframe import DynamicFrame

    if isinstance(df, CsvTyping):
        if not df.settled:
            # Typed when written (or when something needs the data first): _csvtypes.
            return DynamicFrame._pending_frame(PendingFrame.of(df), glue_context, name)
        df = df.frame()
    return DynamicFrame(df, glue_context, name)


class DynamicFrameReader:
    """``glueContext.create_dynamic_frame``: read sources into DynamicFrames."""

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
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> DynamicFrame:
        """Read a source described by connection and format options.

        Args:
            connection_type: s3, file, postgresql or mysql.
            connection_options: s3: ``paths``, ``recurse``, ``exclusions``; JDBC: ``url``,
                ``user``, ``password``, ``dbtable``, ``jobBookmarkKeys`` ...
            format: csv, json, parquet, orc or text (s3).
            format_options: Glue's format options.
            transformation_ctx: the bookmark key.
            push_down_predicate: a SQL condition applied after reading.
            **kwargs: accepted and ignored.
        """
        source = _io.read_source(
            self._glue_context,
            connection_type,
            connection_options,
            format,
            format_options,
            transformation_ctx,
        )
        if push_down_predicate:
            # Filtered data cannot check the source's types as it is written (the filter sees
            # typed values, the types depend on all of them): settled first.
            df = source.frame() if isinstance(source, CsvTyping) else source
            source = df.filter(push_down_predicate)
        return _frame(source, self._glue_context, transformation_ctx)

    def from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available: there is no Data Catalog.

        Args:
            *args: database, table_name ... (ignored).
            **kwargs: ignored.

        Raises:
            NotImplementedError: always, saying what to use instead.
        """
        raise NotImplementedError(
            _io.NO_CATALOG.format(
                what="create_dynamic_frame.from_catalog",
                instead="create_dynamic_frame.from_options",
            )
        )

    def from_rdd(
        self,
        data: Any,
        name: str,
        schema: Any = None,
        sample_ratio: float | None = None,
        transformation_ctx: str = "",
    ) -> DynamicFrame:
        """A frame from local rows or an RDD, through ``spark.createDataFrame``.

        Args:
            data: the rows.
            name: the frame's name.
            schema: an optional schema.
            sample_ratio: the schema inference sampling ratio.
            transformation_ctx: accepted.
        """
        spark = self._glue_context.spark_session
        df = spark.createDataFrame(data, schema, samplingRatio=sample_ratio)
        return _frame(df, self._glue_context, name)


class DynamicFrameWriter:
    """``glueContext.write_dynamic_frame``: write DynamicFrames to sinks."""

    def __init__(self, glue_context: GlueContext) -> None:
        """Bind to a GlueContext.

        Args:
            glue_context: the GlueContext.
        """
        self._glue_context = glue_context

    def from_options(
        self,
        frame: DynamicFrame | DataFrame,
        connection_type: str,
        connection_options: dict[str, Any] | None = None,
        format: str | None = None,
        format_options: dict[str, Any] | None = None,
        transformation_ctx: str = "",
    ) -> DynamicFrame:
        """Write a frame, appending as Glue's sinks do, and return it.

        Args:
            frame: the frame (a DataFrame is accepted too).
            connection_type: s3, file, postgresql or mysql.
            connection_options: s3: ``path``, ``partitionKeys``, ``compression``; JDBC:
                ``url``, ``user``, ``password``, ``dbtable``.
            format: csv, json, parquet/glueparquet, orc or text (s3).
            format_options: Glue's format options (csv ``writeHeader``, ``separator`` ...).
            transformation_ctx: accepted.
        """
        from awsglue.dynamicframe import DynamicFrame

        if isinstance(frame, DynamicFrame):
            pending = frame._pending_data()
            if pending is not None and _io.is_file_connection(connection_type):
                # One pass: written with the sampled types, which the write itself checks.
                write_checked(
                    pending,
                    lambda df: _io.write_staged(df, connection_options, format, format_options),
                    lambda df: _io.write(
                        df, connection_type, connection_options, format, format_options
                    ),
                )
                return frame
            _io.write(frame.toDF(), connection_type, connection_options, format, format_options)
            return frame
        # A DataFrame (classic or Spark Connect, whose class is a different one).
        _io.write(frame, connection_type, connection_options, format, format_options)
        return _frame(frame, self._glue_context, transformation_ctx)

    def from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available: there is no Data Catalog.

        Args:
            *args: frame, database, table_name ... (ignored).
            **kwargs: ignored.

        Raises:
            NotImplementedError: always, saying what to use instead.
        """
        raise NotImplementedError(
            _io.NO_CATALOG.format(
                what="write_dynamic_frame.from_catalog",
                instead="write_dynamic_frame.from_options",
            )
        )

    def from_jdbc_conf(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Not available: Glue connections live in the Data Catalog.

        Args:
            *args: frame, catalog_connection ... (ignored).
            **kwargs: ignored.

        Raises:
            NotImplementedError: always, saying what to use instead.
        """
        raise NotImplementedError(
            _io.NO_CATALOG.format(
                what="write_dynamic_frame.from_jdbc_conf (a catalog connection)",
                instead="write_dynamic_frame.from_options",
            )
        )
