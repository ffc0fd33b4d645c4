"""GlueClient's tag operations (TagResource, UntagResource, GetTags) and the ARNs they take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from clients.glue_client.channel import ClientChannel
from glue.v1 import glue_pb2

TAGGABLE_KINDS: Final = ("job", "trigger")
"""The resource types whose ARNs TagResource, UntagResource and GetTags take."""
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "000000000000"
"""The region and account ``resource_arn`` names unless told: the service accepts any."""


def resource_arn(
    kind: str, name: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> str:
    """A job's or trigger's ARN, as the tag operations take it.

    ``resource_arn("job", "nightly")`` is ``arn:aws:glue:us-east-1:000000000000:job/nightly``.
    The service accepts any region and account (there is one of each per deployment), so the
    defaults do unless an ARN must match one used elsewhere.

    Raises:
        ValueError: ``kind`` is not ``job`` or ``trigger``, or ``name`` is empty.
    """
    if kind not in TAGGABLE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TAGGABLE_KINDS)}, got {kind!r}")
    if not name:
        raise ValueError("name must not be empty")
    return f"arn:aws:glue:{region}:{account}:{kind}/{name}"


class TagOperations(ClientChannel):
    """GlueClient's tag operations."""

    async def tag_resource(self, arn: str, tags: Mapping[str, str]) -> glue_pb2.TagResourceResponse:
        """TagResource: adds ``tags``, replacing the values of keys the resource already has.

        ``arn`` names a job or trigger (``resource_arn`` builds one).

        Raises:
            InvalidInputException: a malformed ARN, one of an untaggable type, a bad tag, or
                more tags than a resource may carry.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.TagResourceRequest(resource_arn=arn, tags_to_add=dict(tags))
        return await self._call(
            lambda: self._stub.TagResource(message, timeout=self.timeout), read_only=False
        )

    async def untag_resource(self, arn: str, keys: Sequence[str]) -> glue_pb2.UntagResourceResponse:
        """UntagResource: removes the tags with these keys (keys the resource lacks are ignored).

        Raises:
            InvalidInputException: a malformed ARN or one of an untaggable type.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.UntagResourceRequest(resource_arn=arn, tags_to_remove=list(keys))
        return await self._call(
            lambda: self._stub.UntagResource(message, timeout=self.timeout), read_only=False
        )

    async def get_tags(self, arn: str) -> glue_pb2.GetTagsResponse:
        """GetTags: the job's or trigger's tags.

        Raises:
            InvalidInputException: a malformed ARN or one of an untaggable type.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.GetTagsRequest(resource_arn=arn)
        return await self._call(
            lambda: self._stub.GetTags(message, timeout=self.timeout), read_only=True
        )
