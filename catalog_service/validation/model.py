"""botocore's Glue model, loaded once from the pinned botocore, and its shapes compiled into
validators (``ModelValidator``), once per shape, for the life of the process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any, Final

from botocore.loaders import Loader
from botocore.model import ServiceModel

from catalog_service.validation.containers import _CodeGenNodes, _List, _Map, _Structure
from catalog_service.validation.scalars import (
    _Blob,
    _Boolean,
    _Document,
    _Double,
    _Integer,
    _String,
    _Timestamp,
    _Validator,
)
from catalog_service.validation.violations import Violation

_SERVICE: Final = "glue"
_API_VERSION: Final = "2017-03-31"


# Glue's `integer` and `long` are Java int32/int64, and our protos carry them as int32/int64:
# a larger Python int would be accepted here and then fail (or wrap) in the proto conversion.
_INT_RANGES: Final = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


# Where AWS's framework prints an enum's values otherwise than the model spells them: moto's
# test_glue.py::test_create_predicate_with_invalid_logical_operator quotes AWS's answer for a bad
# LogicalOperator, whose set reads [Equals] although the model's one value is EQUALS.
_ENUM_AS_AWS_PRINTS: Final = {"LogicalOperator": "Equals"}

# Validated as "a JSON object of objects" instead of against its shape: the shape is the
# visual editor's whole node catalogue (hundreds of shapes), and we store it verbatim.
_CODE_GEN_NODES_SHAPE: Final = "CodeGenConfigurationNodes"


class ModelValidator:
    """Checks requests against a botocore service model (Glue's; the gateway's CloudWatch Logs
    operations use it with the logs model): shapes are turned into validators once each,
    memoised by shape name."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._by_shape: dict[str, _Validator] = {}
        self.operation_names: tuple[str, ...] = tuple(model.operation_names)

    def check(self, operation: str, params: Mapping[str, Any]) -> list[Violation]:
        """Every rule of the model ``params`` breaks as ``operation``'s input (types, lengths,
        patterns, ranges, enums, required members); empty if none.

        Raises:
            ValueError: ``operation`` is not one of the model's.
        """
        return list(self.operation_root(operation).check(dict(params)))

    def operation_root(self, operation: str) -> _Structure:
        if operation not in self.operation_names:
            raise ValueError(f"{operation!r} is not an operation of the Glue model")
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            # No input members at all: any member given is unknown.
            return _Structure(f"{operation}Request", union=False)
        root = self.shape(shape)
        if not isinstance(root, _Structure):
            raise TypeError(f"the input of {operation} is not a structure")
        return root

    def shape(self, shape: Any) -> _Validator:
        name: str = shape.name
        cached = self._by_shape.get(name)
        if cached is not None:
            return cached
        validator = self._build(shape)
        self._by_shape[name] = validator
        return validator

    def _build(self, shape: Any) -> _Validator:
        meta: dict[str, Any] = shape.metadata
        kind: str = shape.type_name
        if shape.name == _CODE_GEN_NODES_SHAPE:
            return _CodeGenNodes(self.shape(shape.key))
        if kind == "string":
            return _String(
                min_len=int(meta.get("min", 0)),
                max_len=int(meta["max"]) if "max" in meta else None,
                enum=tuple(shape.enum) or None,
                pattern=meta.get("pattern"),
                sensitive=bool(meta.get("sensitive", False)),
                enum_shown=_ENUM_AS_AWS_PRINTS.get(shape.name),
            )
        if kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]
            return _Integer(
                max(low, int(meta.get("min", low))),
                min(high, int(meta.get("max", high))),
                ("min" in meta, "max" in meta),
            )
        if kind in ("double", "float"):
            low_f = float(meta["min"]) if "min" in meta else None
            high_f = float(meta["max"]) if "max" in meta else None
            return _Double(low_f, high_f)
        if kind == "boolean":
            return _Boolean()
        if kind == "timestamp":
            return _Timestamp()
        if kind == "blob":
            return _Blob()
        if kind == "list":
            lst = _List(int(meta.get("min", 0)), int(meta["max"]) if "max" in meta else None)
            # Registered before its member compiles, in case the member refers back to it.
            self._by_shape[shape.name] = lst
            lst.bind(self.shape(shape.member))
            return lst
        if kind == "map":
            mapping = _Map(int(meta.get("min", 0)), int(meta["max"]) if "max" in meta else None)
            self._by_shape[shape.name] = mapping
            mapping.bind(self.shape(shape.key), self.shape(shape.value))
            return mapping
        if kind == "structure":
            if getattr(shape, "is_document_type", False):
                return _Document()
            structure = _Structure(shape.name, union=bool(getattr(shape, "is_tagged_union", False)))
            self._by_shape[shape.name] = structure
            required = tuple(shape.required_members)
            members: dict[str, _Validator] = {}
            for member_name, member_shape in shape.members.items():
                validator = self.shape(member_shape)
                if member_name in required and isinstance(validator, _String):
                    # A required string must also be non-empty (Role has no min length).
                    validator = validator.required()
                members[member_name] = validator
            structure.fill(members, required)
            return structure
        raise NotImplementedError(f"shape {shape.name!r} has unsupported type {kind!r}")


@functools.cache
def glue_model() -> ServiceModel:
    """botocore's Glue service model, loaded once: the validators' and the HTTP gateway's."""
    return builtin_model(_SERVICE, _API_VERSION)


def builtin_model(service: str, api_version: str | None = None) -> ServiceModel:
    """A service model from the pinned botocore's own data (Glue's; CloudWatch Logs' for the
    gateway's logs operations)."""
    # The pinned botocore's own data only: a session would also read ~/.aws/models and
    # AWS_DATA_PATH, which could silently change the limits we enforce.
    loader = Loader(
        extra_search_paths=[Loader.BUILTIN_DATA_PATH],
        include_default_search_paths=False,
        include_default_extras=False,
    )
    description = loader.load_service_model(service, "service-2", api_version=api_version)
    return ServiceModel(description, service_name=service)


@functools.cache
def _compiler() -> ModelValidator:
    return ModelValidator(glue_model())


# Compilation registers a structure before filling it (for recursive shapes); the lock keeps
# another thread from validating against a half-filled one.
_COMPILE_LOCK: Final = threading.Lock()


@functools.cache
def _named_shape(name: str) -> _Validator:
    with _COMPILE_LOCK:
        return _compiler().shape(glue_model().shape_for(name))
