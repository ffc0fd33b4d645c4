"""Glue's transform classes, used as ``ApplyMapping.apply(frame=..., mappings=...)``.

Each class is a thin front to the DynamicFrame method of the same job, with the signatures of
the AWS pages "<Name> class" under docs.aws.amazon.com/glue/latest/dg/ (for example
aws-glue-api-crawler-pyspark-transforms-ApplyMapping.html). ``apply`` builds the transform and
calls it with the given arguments, as GlueTransform.apply does on AWS.
"""

# ruff: noqa: N802, N803 - class, method and argument names are AWS Glue's public API

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from awsglue._guard import require_spark

require_spark("awsglue.transforms")

from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection  # noqa: E402

__all__ = [
    "ApplyMapping",
    "DropFields",
    "DropNullFields",
    "Filter",
    "GlueTransform",
    "Join",
    "Map",
    "MapToCollection",
    "Relationalize",
    "RenameField",
    "ResolveChoice",
    "SelectFields",
    "SelectFromCollection",
    "SplitFields",
    "SplitRows",
    "Unbox",
    "UnnestFrame",
]


class GlueTransform:
    """The base of the transforms: ``apply`` = build and call."""

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the transform.

        Args:
            *args: the transform's ``__call__`` arguments.
            **kwargs: the same, by name.
        """
        return cls()(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def name(cls) -> str:
        """The transform's name."""
        return cls.__name__

    @classmethod
    def describeArgs(cls) -> list[dict[str, Any]]:
        """Argument descriptions (not kept here: see the AWS page of the transform)."""
        return []

    @classmethod
    def describeReturn(cls) -> dict[str, Any]:
        """What the transform returns."""
        return {"type": "DynamicFrame"}

    @classmethod
    def describeTransform(cls) -> str:
        """A one-line description: the class docstring's first line."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def describeErrors(cls) -> list[dict[str, Any]]:
        """Errors the transform reports (none beyond exceptions here)."""
        return []

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything the describe* methods say, together."""
        return {
            "transform": {"name": cls.name(), "description": cls.describeTransform()},
            "args": cls.describeArgs(),
            "returns": cls.describeReturn(),
            "raises": cls.describeErrors(),
        }


class ApplyMapping(GlueTransform):
    """Selects, renames, retypes and nests fields by mapping tuples."""

    def __call__(
        self,
        frame: DynamicFrame,
        mappings: Sequence[Sequence[str]],
        case_sensitive: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.apply_mapping(mappings, case_sensitive, transformation_ctx)


class SelectFields(GlueTransform):
    """Keeps only the given fields."""

    def __call__(
        self,
        frame: DynamicFrame,
        paths: Sequence[str],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.select_fields(paths)


class DropFields(GlueTransform):
    """Removes the given fields."""

    def __call__(
        self,
        frame: DynamicFrame,
        paths: Sequence[str],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.drop_fields(paths)


class RenameField(GlueTransform):
    """Renames a field (full paths, backticks around names with dots)."""

    def __call__(
        self,
        frame: DynamicFrame,
        old_name: str,
        new_name: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.rename_field(old_name, new_name)


class Filter(GlueTransform):
    """Keeps the records for which a predicate is true."""

    def __call__(
        self,
        frame: DynamicFrame,
        f: Callable[[dict[str, Any]], Any],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.filter(f)


class Map(GlueTransform):
    """Builds a new frame from a function applied to every record."""

    def __call__(
        self,
        frame: DynamicFrame,
        f: Callable[[dict[str, Any]], Any],
        preservesPartitioning: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.map(f)


class ResolveChoice(GlueTransform):
    """Resolves choice fields by cast, project, make_cols or make_struct."""

    def __call__(
        self,
        frame: DynamicFrame,
        specs: Sequence[tuple[str, str]] | None = None,
        choice: str = "",
        database: str | None = None,
        table_name: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
        catalog_id: str | None = None,
    ) -> DynamicFrame:
        return frame.resolveChoice(specs, choice, database, table_name, catalog_id=catalog_id)


class Join(GlueTransform):
    """Inner equality join of two frames on key fields."""

    def __call__(
        self,
        frame1: DynamicFrame,
        frame2: DynamicFrame,
        keys1: str | Sequence[str],
        keys2: str | Sequence[str],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame1.join(keys1, keys2, frame2)


class Relationalize(GlueTransform):
    """Flattens structs and pivots arrays out into a collection of tables."""

    def __call__(
        self,
        frame: DynamicFrame,
        staging_path: str | None = None,
        name: str = "roottable",
        options: dict[str, Any] | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrameCollection:
        return frame.relationalize(name, staging_path, options)


class DropNullFields(GlueTransform):
    """Removes the fields that are null in every record."""

    def __call__(
        self,
        frame: DynamicFrame,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.drop_null_fields()


class SplitFields(GlueTransform):
    """Splits a frame in two by fields: the given ones and the rest."""

    def __call__(
        self,
        frame: DynamicFrame,
        paths: Sequence[str],
        name1: str | None = None,
        name2: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrameCollection:
        # AWS: without names, the source frame's name with "1" and "2" appended.
        return frame.split_fields(paths, name1 or f"{frame.name}1", name2 or f"{frame.name}2")


class SplitRows(GlueTransform):
    """Splits a frame in two by row comparisons."""

    def __call__(
        self,
        frame: DynamicFrame,
        comparison_dict: dict[str, dict[str, Any]],
        name1: str | None = None,
        name2: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrameCollection:
        return frame.split_rows(
            comparison_dict, name1 or f"{frame.name}1", name2 or f"{frame.name}2"
        )


class Unbox(GlueTransform):
    """Parses a string field holding JSON or CSV into a struct."""

    def __call__(
        self,
        frame: DynamicFrame,
        path: str,
        format: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
        **options: Any,
    ) -> DynamicFrame:
        return frame.unbox(path, format, **options)


class UnnestFrame(GlueTransform):
    """Makes nested struct fields top-level, named with dots."""

    def __call__(
        self,
        frame: DynamicFrame,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,
        totalThreshold: int = 0,
    ) -> DynamicFrame:
        return frame.unnest()


class SelectFromCollection(GlueTransform):
    """Picks one frame of a DynamicFrameCollection by name."""

    def __call__(
        self, dfc: DynamicFrameCollection, key: str, transformation_ctx: str = ""
    ) -> DynamicFrame:
        return dfc.select(key)


class MapToCollection(GlueTransform):
    """Applies a transform to every frame of a DynamicFrameCollection."""

    def __call__(
        self,
        dfc: DynamicFrameCollection,
        callable: Callable[[DynamicFrame, str], DynamicFrame],
        transformation_ctx: str = "",
    ) -> DynamicFrameCollection:
        return dfc.map(callable, transformation_ctx)
