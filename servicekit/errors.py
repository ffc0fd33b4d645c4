"""The error vocabulary: Glue's exceptions, each bound to a gRPC status code.

::

    GlueError                              (grpc INTERNAL)
    +-- InvalidInputException              INVALID_ARGUMENT
    |   +-- ValidationException            INVALID_ARGUMENT  (a model constraint: length, ...)
    +-- EntityNotFoundException            NOT_FOUND
    +-- AlreadyExistsException             ALREADY_EXISTS
    +-- ConcurrentRunsExceededException    RESOURCE_EXHAUSTED
    +-- ResourceNumberLimitExceededException RESOURCE_EXHAUSTED
    +-- ThrottlingException                RESOURCE_EXHAUSTED
    +-- IdempotentParameterMismatchException ALREADY_EXISTS
    +-- ConcurrentModificationException    ABORTED
    +-- OperationTimeoutException          DEADLINE_EXCEEDED
    +-- AccessDeniedException              PERMISSION_DENIED
    +-- UnrecognizedClientException        UNAUTHENTICATED
    +-- MissingAuthenticationTokenException UNAUTHENTICATED
    +-- InternalServiceException           INTERNAL
        +-- ServiceUnavailableException    UNAVAILABLE  (reason: InternalServiceException)
        +-- ConstraintViolation            INTERNAL     (reason: InternalServiceException)

On the wire every error is a ``google.rpc.Status`` whose details hold a ``google.rpc.ErrorInfo``
with ``reason`` = the Glue exception name and ``domain`` = ``glue.v1``. ``to_rpc_status`` builds
it (server side, used by the one interceptor in ``servicekit.server``) and ``from_rpc_error``
maps it back to the same classes (client side), as google api-core does.
"""

from __future__ import annotations

from typing import ClassVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "glue.v1"

_BY_REASON: dict[str, type[GlueError]] = {}


class GlueError(Exception):
    """Base of every error a client can see; ``reason`` is the Glue exception name."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "InternalServiceException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that narrows the gRPC code keeps its parent's reason and does not
        # replace the parent as the class a reason maps back to.
        if "reason" not in cls.__dict__:
            cls.reason = cls.__name__
        _BY_REASON.setdefault(cls.reason, cls)


class InvalidInputException(GlueError):
    """The request breaks a rule of Glue's model or of the operation; nothing changed."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ValidationException(InvalidInputException):
    """The request breaks a constraint of Glue's model (length, pattern, enum, range, required).

    AWS's request framework answers these itself, before Glue's own checks, with this code and
    its "N validation errors detected: Value ... at '<member path>' failed to satisfy
    constraint: ..." text (docs/glue-fidelity.md has the evidence). A subclass, so every
    ``except InvalidInputException`` still catches it; ``field`` names the member for gRPC.
    """


class EntityNotFoundException(GlueError):
    """A named job, run or trigger does not exist."""

    grpc_code = grpc.StatusCode.NOT_FOUND

    # Glue's texts for the usual entities, written once (the catalog and the scheduler both
    # raise them).
    @classmethod
    def job(cls, name: str) -> EntityNotFoundException:
        """No job ``name``."""
        return cls(f"Job {name} not found.")

    @classmethod
    def run(cls, job_name: str, run_id: str) -> EntityNotFoundException:
        """No run ``run_id`` of job ``job_name``."""
        return cls(f"Job run {run_id} of job {job_name} not found.")

    @classmethod
    def trigger(cls, name: str) -> EntityNotFoundException:
        """No trigger ``name``."""
        return cls(f"Trigger {name} not found.")


class AlreadyExistsException(GlueError):
    """A create named something that already exists."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class ConcurrentRunsExceededException(GlueError):
    """The job already has MaxConcurrentRuns runs in flight."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    @classmethod
    def for_job(cls, name: str) -> ConcurrentRunsExceededException:
        """Job ``name`` is at its limit. AWS's text (docs/glue-fidelity.md:
        aws-solutions/amazon-marketing-cloud-uploader issue #51 quotes it)."""
        return cls(f"Concurrent runs exceeded for {name}")


class ResourceNumberLimitExceededException(GlueError):
    """A configured limit on the number of resources was reached."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ThrottlingException(GlueError):
    """Too many calls at once; retry with backoff (botocore retries this code by itself)."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class IdempotentParameterMismatchException(GlueError):
    """A retried call named the same thing with different parameters."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class ConcurrentModificationException(GlueError):
    """Another change to the same entity won the race; retry."""

    grpc_code = grpc.StatusCode.ABORTED


class OperationTimeoutException(GlueError):
    """The operation did not finish in time."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class AccessDeniedException(GlueError):
    """The caller's policy does not allow the operation on the resource; nothing changed."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class UnrecognizedClientException(GlueError):
    """The credentials sent are not valid (unknown key or wrong secret)."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class MissingAuthenticationTokenException(GlueError):
    """Credentials are required and none were sent."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class InternalServiceException(GlueError):
    """Something failed inside the service; the details are in its log."""

    grpc_code = grpc.StatusCode.INTERNAL


class ServiceUnavailableException(InternalServiceException):
    """A service this one depends on is unreachable; the call may be retried."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "InternalServiceException"

    @classmethod
    def stopping(cls, service: str) -> ServiceUnavailableException:
        """``service`` is shutting down: the call was not done and may be retried elsewhere
        or after the restart."""
        return cls(f"the {service} is stopping; retry")


class ConstraintViolation(InternalServiceException):
    """A write broke one of the database's integrity rules (a unique key, most often: a
    concurrent create of the same name committed first).

    ``servicekit.db`` raises it in place of the driver's IntegrityError, so nothing above the
    storage boundary sees ``sqlalchemy.exc``. A caller that expects it says what it means
    (``AlreadyExistsException``); one that escapes is a fault of ours, an internal error.
    """

    reason = "InternalServiceException"


_BY_REASON["InternalServiceException"] = InternalServiceException


def to_rpc_status(error: GlueError) -> grpc.Status:
    """Build the gRPC status (with a packed ErrorInfo) that carries ``error`` to a client."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    field = getattr(error, "field", None)
    if field:
        info.metadata["field"] = field
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=error.grpc_code.value[0], message=error.message, details=[detail]
    )
    return cast("grpc.Status", rpc_status.to_status(status))


def error_reason(error: grpc.RpcError) -> str | None:
    """The Glue exception name an RPC error carries, if it carries one."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return None


def from_reason(reason: str, message: str) -> GlueError:
    """The error a Glue exception name and message stand for (InternalServiceException for a
    name this side does not know)."""
    return _BY_REASON.get(reason, InternalServiceException)(message)


def from_rpc_error(error: grpc.RpcError) -> GlueError:
    """Map an RPC error back to the GlueError class its ErrorInfo names.

    Errors without an ErrorInfo (a dead server, a deadline) map by status code: UNAVAILABLE and
    DEADLINE_EXCEEDED to ServiceUnavailableException / OperationTimeoutException, anything else
    to InternalServiceException.
    """
    message = error.details() or str(error.code())  # type: ignore[attr-defined]
    reason = error_reason(error)
    if reason is not None and reason in _BY_REASON:
        cls = _BY_REASON[reason]
        if cls is InternalServiceException and error.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            cls = ServiceUnavailableException
        return cls(message)
    code = error.code()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServiceUnavailableException(message)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return OperationTimeoutException(message)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInputException(message)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return UnrecognizedClientException(message)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return AccessDeniedException(message)
    return InternalServiceException(message)
