"""GlueClient's job bookmark operations: GetJobBookmark and ResetJobBookmark."""

from __future__ import annotations

from clients.glue_client.channel import ClientChannel
from glue.v1 import glue_pb2


class JobBookmarkOperations(ClientChannel):
    """GlueClient's job bookmark operations."""

    async def get_job_bookmark(
        self, job_name: str, *, run_id: str | None = None
    ) -> glue_pb2.GetJobBookmarkResponse:
        """GetJobBookmark: the job's bookmark entry; with ``run_id``, the one that run's commit
        left.

        Raises:
            EntityNotFoundException: no such job, none of its runs committed a bookmark, or
                ``run_id`` committed none.
        """
        message = glue_pb2.GetJobBookmarkRequest(job_name=job_name, run_id=run_id)
        return await self._call(
            lambda: self._stub.GetJobBookmark(message, timeout=self.timeout), read_only=True
        )

    async def reset_job_bookmark(
        self, job_name: str, *, run_id: str | None = None
    ) -> glue_pb2.ResetJobBookmarkResponse:
        """ResetJobBookmark: the next run starts from the beginning; with ``run_id``, from the
        bookmark as it was before that run committed. Returns the entry after the reset.

        Raises:
            EntityNotFoundException: no such job, none of its runs committed a bookmark, or
                ``run_id`` committed none.
        """
        message = glue_pb2.ResetJobBookmarkRequest(job_name=job_name, run_id=run_id)
        return await self._call(
            lambda: self._stub.ResetJobBookmark(message, timeout=self.timeout), read_only=False
        )
