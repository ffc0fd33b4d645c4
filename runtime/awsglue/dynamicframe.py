"""DynamicFrame and DynamicFrameCollection, backed by a Spark DataFrame.

The methods follow the AWS page "DynamicFrame class"
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-dynamic-frame.html).
Each frame wraps one DataFrame; records are self-describing only where the docs say it matters
(Map infers the schema of the records it returns; a "choice" is emulated, see ``_choice``).
The ``transformation_ctx``/``info``/``stageThreshold``/``totalThreshold`` arguments of the
transforms are accepted for compatibility and otherwise unused: there are no error records
here, a record that fails a transform fails the job.
"""

# ruff: noqa: N802, N803 - method and argument names are AWS Glue's public API

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from awsglue._guard import require_spark

require_spark("awsglue.dynamicframe")

from pyspark.sql import DataFrame  # noqa: E402 - after the pythonshell guard, on purpose
from pyspark.sql import functions as F  # noqa: E402, N812
from pyspark.sql.types import StructType  # noqa: E402

from awsglue import _fieldpath as fp  # noqa: E402
from awsglue import _ops, _records  # noqa: E402
from awsglue._choice import resolve_choice  # noqa: E402
from awsglue._csvtypes import PendingFrame, Step  # noqa: E402
from awsglue._io import NO_CATALOG  # noqa: E402
from awsglue._paths import local_path  # noqa: E402
from awsglue._readwrite import DynamicFrameReader, DynamicFrameWriter  # noqa: E402
from awsglue._relationalize import relationalize  # noqa: E402

if TYPE_CHECKING:
    from awsglue.context import GlueContext

__all__ = ["DynamicFrame", "DynamicFrameCollection", "DynamicFrameReader", "DynamicFrameWriter"]

Record = dict[str, Any]


class DynamicFrame:
    """A distributed collection of records, with Glue's transforms, over a DataFrame."""

    def __init__(self, df: DataFrame, glue_ctx: GlueContext, name: str = "") -> None:
        """Wrap a DataFrame (AWS takes a JVM frame here; scripts normally use ``fromDF``).

        Args:
            df: the data.
            glue_ctx: the GlueContext.
            name: an optional name.
        """
        self._data: DataFrame | None = df
        # Set instead of _data while a CSV source's types are not settled (_csvtypes).
        self._pending: PendingFrame | None = None
        self.glue_ctx = glue_ctx
        self.name = name

    @classmethod
    def _pending_frame(
        cls, pending: PendingFrame, glue_ctx: GlueContext, name: str = ""
    ) -> DynamicFrame:
        """A frame whose CSV source's types settle when it is written or its data needed."""
        frame = cls(pending.preview, glue_ctx, name)
        frame._data, frame._pending = None, pending
        return frame

    @property
    def _df(self) -> DataFrame:
        # Every use of the data but a file write settles the source's types first.
        if self._data is None:
            assert self._pending is not None
            self._data, self._pending = self._pending.settle(), None
        return self._data

    def _pending_data(self) -> PendingFrame | None:
        """The frame's data while its source's types are guessed, else None."""
        if self._pending is not None and self._pending.typing.settled:
            self._data, self._pending = self._pending.settle(), None
        return self._pending

    def _derive(
        self, step: Step, ignores: Callable[[Mapping[str, str]], frozenset[str]] | None = None
    ) -> DynamicFrame:
        # Column-only transforms keep a frame pending, so that its write still checks the
        # types in its own pass (only those its data depend on: ``ignores``, PendingFrame.then).
        pending = self._pending_data()
        if pending is not None:
            derived = pending.then(step, ignores)
            return DynamicFrame._pending_frame(derived, self.glue_ctx, self.name)
        return self._new(step(self._df))

    @staticmethod
    def fromDF(dataframe: DataFrame, glue_ctx: GlueContext, name: str = "") -> DynamicFrame:
        """A DynamicFrame holding a DataFrame's rows.

        Args:
            dataframe: the DataFrame.
            glue_ctx: the GlueContext.
            name: the frame's name.
        """
        return DynamicFrame(dataframe, glue_ctx, name)

    def toDF(self, options: Any = None) -> DataFrame:
        """The frame as a Spark DataFrame.

        Args:
            options: AWS's ResolveOption list; there are no choice types to resolve here.
        """
        return self._df

    def _new(self, df: DataFrame, name: str = "") -> DynamicFrame:
        return DynamicFrame(df, self.glue_ctx, name or self.name)

    # -- information ------------------------------------------------------------------------

    def count(self) -> int:
        """The number of records."""
        return self._df.count()

    def schema(self) -> StructType:
        """The schema, as a Spark StructType (AWS returns its own gluetypes classes)."""
        return self._df.schema

    def printSchema(self) -> None:
        """Print the schema the way Glue does (``root`` then ``|-- name: type`` lines)."""
        print(_ops.schema_text(self._df.schema))  # noqa: T201 - printing is the method's job

    def show(self, num_rows: int = 20) -> None:
        """Print the first records as JSON objects, one per line, as Glue does.

        Args:
            num_rows: how many records.
        """
        record = F.to_json(F.struct(*[fp.top(c) for c in self._df.columns]))
        rows = self._df.select(record.alias("r")).limit(num_rows).collect()
        print("\n".join(row["r"] for row in rows))  # noqa: T201 - printing is the method's job

    def repartition(self, num_partitions: int, *args: Any, **kwargs: Any) -> DynamicFrame:
        """A frame with ``num_partitions`` partitions.

        Args:
            num_partitions: the number of partitions.
            *args: accepted (transformation_ctx, info ... as on AWS).
            **kwargs: accepted.
        """
        return self._derive(lambda df: df.repartition(num_partitions))

    def coalesce(self, num_partitions: int, *args: Any, **kwargs: Any) -> DynamicFrame:
        """A frame with at most ``num_partitions`` partitions, without a shuffle.

        Args:
            num_partitions: the number of partitions.
            *args: accepted (transformation_ctx, info ... as on AWS).
            **kwargs: accepted.
        """
        return self._derive(lambda df: df.coalesce(num_partitions))

    def getNumPartitions(self) -> int:
        """The number of partitions of the underlying data (classic Spark only)."""
        return self._df.rdd.getNumPartitions()

    # -- transforms (the trailing ctx/info/threshold arguments are accepted, unused) --------

    def apply_mapping(
        self,
        mappings: Sequence[Sequence[str]],
        case_sensitive: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrame:
        """Select, rename, retype and nest fields (AWS page "ApplyMapping class").

        A dotted source reads a nested field, a dotted target builds nested structs, and
        backticks keep a name with dots whole. Only mapped fields are kept; a source that does
        not exist yields no target field.

        Args:
            mappings: (source path, source type, target path, target type) tuples.
            case_sensitive: accepted; names match exactly, else case-insensitively.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        rules = list(mappings)
        return self._derive(
            lambda df: _ops.apply_mapping(df, rules),
            lambda kinds: _ops.types_mapping_ignores(rules, kinds),
        )

    def select_fields(self, paths: str | Sequence[str], *args: Any, **kwargs: Any) -> DynamicFrame:
        """Keep only the given fields (a nested path keeps its parents, with only that child).

        Args:
            paths: field paths; ones that do not exist are ignored.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        fields = _ops.as_list(paths)
        return self._derive(lambda df: _ops.select_fields(df, fields))

    def drop_fields(self, paths: str | Sequence[str], *args: Any, **kwargs: Any) -> DynamicFrame:
        """Remove the given fields (nested paths and ``list[].field`` too).

        Args:
            paths: field paths; ones that do not exist are ignored.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        fields = _ops.as_list(paths)
        return self._derive(lambda df: _ops.drop_fields(df, fields))

    def rename_field(self, oldName: str, newName: str, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Rename a field; both names are full paths (backticks around names with dots).

        Args:
            oldName: the field's path.
            newName: its new path; a different parent moves the field there.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        return self._derive(lambda df: _ops.rename_field(df, oldName, newName))

    def filter(self, f: Callable[[Record], Any], *args: Any, **kwargs: Any) -> DynamicFrame:
        """Keep the records for which ``f(record)`` is true; a record is a dict.

        Args:
            f: the predicate.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        return self._new(_records.filter_frame(self._df, f))

    def map(self, f: Callable[[Record], Any], *args: Any, **kwargs: Any) -> DynamicFrame:
        """Apply ``f`` to each record (a dict) and build a frame of what it returns.

        The new schema is inferred from all returned records, so ``f`` runs twice per record.

        Args:
            f: record -> new record (a dict; None drops the record).
            *args: preservesPartitioning, transformation_ctx, info, thresholds.
            **kwargs: the same, by name.
        """
        return self._new(_records.map_frame(self._df, f))

    def resolveChoice(
        self,
        specs: Sequence[tuple[str, str]] | None = None,
        choice: str = "",
        database: str | None = None,
        table_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrame:
        """Resolve choice fields (see ``_choice`` for how a choice is emulated here).

        Args:
            specs: (path, action) pairs: cast:<type>, project:<type>, make_cols, make_struct.
            choice: one action for every choice field (the old docs call it ``option``).
            database: a Data Catalog database (not available here).
            table_name: a Data Catalog table (not available here).
            *args: transformation_ctx, info, stageThreshold, totalThreshold, catalog_id.
            **kwargs: the same by name, and ``option``.

        Raises:
            ValueError: catalog matching, both specs and choice, an unknown action.
        """
        if database or table_name or kwargs.get("catalog_id"):
            raise ValueError(
                NO_CATALOG.format(
                    what="resolveChoice against a catalog table", instead="cast:<type> specs"
                )
            )
        action = choice or kwargs.get("option", "")
        return self._new(resolve_choice(self._df, list(specs) if specs else None, action))

    def relationalize(
        self,
        root_table_name: str,
        staging_path: str | None = None,
        options: dict[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrameCollection:
        """Flatten structs and pivot arrays out into tables (AWS page "Relationalize class").

        Args:
            root_table_name: the root table's name.
            staging_path: where intermediate tables are staged (s3:// is mapped).
            options: unused, as on AWS.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        spark = self.glue_ctx.spark_session
        tables = relationalize(spark, self._df, root_table_name, staging_path)
        frames = {name: self._new(df, name) for name, df in tables.items()}
        return DynamicFrameCollection(frames, self.glue_ctx)

    def unnest(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Make nested struct fields top-level, named with dots (``a.b``).

        Args:
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        return self._new(self._df.select(*[c.alias(n) for n, c, _ in fp.flatten(self._df)]))

    def join(
        self,
        paths1: str | Sequence[str],
        paths2: str | Sequence[str],
        frame2: DynamicFrame,
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrame:
        """Inner equality join with another frame; both frames' key fields are kept.

        Args:
            paths1: key paths of this frame.
            paths2: key paths of ``frame2``, pairwise; a key named alike on both comes once.
            frame2: the other frame.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        joined = _ops.join(self._df, frame2.toDF(), _ops.as_list(paths1), _ops.as_list(paths2))
        return self._new(joined)

    def unbox(self, path: str, format: str, *args: Any, **options: Any) -> DynamicFrame:
        """Parse a string field holding JSON or CSV into a struct, in place.

        Args:
            path: the string field.
            format: ``json`` or ``csv``.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **options: ``withSchema`` (a StructType's JSON), CSV ``separator``, ``quoteChar``,
                ``escaper`` (and the ctx/threshold arguments by name, ignored).
        """
        return self._new(_ops.unbox(self._df, path, format, options))

    def drop_null_fields(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        """Remove the fields that are null in every record (AWS's DropNullFields).

        Args:
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        return self._new(_ops.drop_null_fields(self._df))

    def split_fields(
        self, paths: str | Sequence[str], name1: str, name2: str, *args: Any, **kwargs: Any
    ) -> DynamicFrameCollection:
        """Split into the given fields (frame ``name1``) and all the others (``name2``).

        Args:
            paths: field paths for the first frame.
            name1: the first frame's name.
            name2: the second frame's name.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        paths = _ops.as_list(paths)
        frames = {
            name1: self._new(_ops.select_fields(self._df, paths), name1),
            name2: self._new(_ops.drop_fields(self._df, paths), name2),
        }
        return DynamicFrameCollection(frames, self.glue_ctx)

    def split_rows(
        self,
        comparison_dict: dict[str, dict[str, Any]],
        name1: str,
        name2: str,
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrameCollection:
        """Split rows by comparisons, e.g. ``{"age": {">": 10, "<": 20}}``.

        Args:
            comparison_dict: path -> {comparator: value}; all must hold for ``name1``.
            name1: the frame of the matching rows.
            name2: the frame of the others.
            *args: transformation_ctx, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        matched = _ops.split_condition(self._df, comparison_dict)
        frames = {
            name1: self._new(self._df.filter(matched), name1),
            name2: self._new(self._df.filter(~matched), name2),
        }
        return DynamicFrameCollection(frames, self.glue_ctx)

    def mergeDynamicFrame(
        self,
        stage_dynamic_frame: DynamicFrame,
        primary_keys: Sequence[str],
        *args: Any,
        **kwargs: Any,
    ) -> DynamicFrame:
        """Records of the staging frame replace the records with the same primary keys.

        Args:
            stage_dynamic_frame: the staging frame.
            primary_keys: top-level key fields.
            *args: transformation_ctx, options, info, stageThreshold, totalThreshold.
            **kwargs: the same, by name.
        """
        stage = stage_dynamic_frame.toDF()
        return self._new(_ops.merge(self._df, stage, _ops.as_list(primary_keys)))

    def spigot(
        self, path: str, options: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> DynamicFrame:
        """Append a sample of the records, as JSON, to ``path``; return this frame.

        Args:
            path: where the sample goes (s3:// is mapped).
            options: ``topk`` (the first k records, default 100) or ``prob`` (a fraction).
            *args: transformation_ctx.
            **kwargs: the same, by name.
        """
        options = options or {}
        if "prob" in options:
            sample = self._df.sample(float(options["prob"]))
        else:
            sample = self._df.limit(int(options.get("topk", 100)))
        sample.write.mode("append").json(local_path(path))
        return self

    def write(
        self,
        connection_type: str,
        connection_options: dict[str, Any] | None = None,
        format: str | None = None,
        format_options: dict[str, Any] | None = None,
        accumulator_size: int = 0,
    ) -> DynamicFrame:
        """Write this frame (see ``DynamicFrameWriter.from_options``).

        Args:
            connection_type: s3, file, postgresql or mysql.
            connection_options: Glue's connection options.
            format: the file format.
            format_options: Glue's format options.
            accumulator_size: accepted.
        """
        writer = self.glue_ctx.write_dynamic_frame
        return writer.from_options(
            self, connection_type, connection_options, format, format_options
        )

    # -- errors: there are no error records here --------------------------------------------

    def errorsCount(self) -> int:
        """0: a failing record fails the job instead of becoming an error record."""
        return 0

    def stageErrorsCount(self) -> int:
        """0, as errorsCount."""
        return 0

    def assertErrorThreshold(self) -> None:
        """Nothing to assert: there are no error records."""
        return

    def errorsAsDynamicFrame(self) -> DynamicFrame:
        """An empty frame: there are no error records."""
        empty = self.glue_ctx.spark_session.createDataFrame([], StructType([]))
        return self._new(empty)


class DynamicFrameCollection:
    """Named DynamicFrames (what relationalize and split_fields return)."""

    def __init__(self, dynamic_frames: dict[str, DynamicFrame], glue_ctx: GlueContext) -> None:
        """Hold frames by name.

        Args:
            dynamic_frames: name -> frame.
            glue_ctx: the GlueContext.
        """
        self._frames = dict(dynamic_frames)
        self.glue_ctx = glue_ctx

    def __getitem__(self, key: str) -> DynamicFrame:
        return self._frames[key]

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __contains__(self, key: object) -> bool:
        return key in self._frames

    def keys(self) -> list[str]:
        """The frames' names."""
        return list(self._frames)

    def values(self) -> list[DynamicFrame]:
        """The frames."""
        return list(self._frames.values())

    def select(self, key: str, transformation_ctx: str = "") -> DynamicFrame:
        """The frame called ``key``.

        Args:
            key: its name.
            transformation_ctx: accepted.
        """
        return self._frames[key]

    def map(
        self,
        callable: Callable[[DynamicFrame, str], DynamicFrame],
        transformation_ctx: str = "",
    ) -> DynamicFrameCollection:
        """Apply ``callable(frame, transformation_ctx)`` to each frame.

        Args:
            callable: the function.
            transformation_ctx: passed on, suffixed with each frame's name.
        """
        frames = {k: callable(v, f"{transformation_ctx}_{k}") for k, v in self._frames.items()}
        return DynamicFrameCollection(frames, self.glue_ctx)
