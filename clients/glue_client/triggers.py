"""GlueClient's trigger operations: Create/Update/Delete/Get/GetTriggers/ListTriggers/BatchGet,
Start/Stop, FireTrigger and GetTriggerFires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from clients.glue_client.channel import ClientChannel
from clients.glue_client.requests import _follow_pages, build_request
from glue.v1 import glue_pb2


class TriggerOperations(ClientChannel):
    """GlueClient's trigger operations."""

    async def create_trigger(
        self,
        request: glue_pb2.CreateTriggerRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.CreateTriggerResponse:
        """CreateTrigger: ``fields`` are Glue members (``Name=``, ``Type=``, ``Actions=[...]``).

        Raises:
            InvalidInputException: the definition breaks a rule (a bad Schedule names the
                cron field at fault).
            EntityNotFoundException: an action names a job that does not exist.
            AlreadyExistsException: a trigger of that name exists.
        """
        message = build_request(glue_pb2.CreateTriggerRequest, request, fields)
        return await self._call(
            lambda: self._stub.CreateTrigger(message, timeout=self.timeout), read_only=False
        )

    async def update_trigger(
        self,
        name: str,
        trigger_update: glue_pb2.TriggerUpdate | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.UpdateTriggerResponse:
        """UpdateTrigger: only the members given change (Actions, when given, as a whole list).

        ``fields`` are TriggerUpdate members in Glue form, laid over ``trigger_update``. An
        ACTIVATED trigger is rescheduled before this returns: the old schedule never fires after.

        Raises:
            InvalidInputException: the merged definition breaks a rule, or a rename.
            EntityNotFoundException: no such trigger, or an action names a missing job.
        """
        update = build_request(glue_pb2.TriggerUpdate, trigger_update, fields)
        message = glue_pb2.UpdateTriggerRequest(name=name, trigger_update=update)
        return await self._call(
            lambda: self._stub.UpdateTrigger(message, timeout=self.timeout), read_only=False
        )

    async def delete_trigger(self, name: str) -> glue_pb2.DeleteTriggerResponse:
        """DeleteTrigger (succeeds if the trigger does not exist); runs in flight finish."""
        message = glue_pb2.DeleteTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.DeleteTrigger(message, timeout=self.timeout), read_only=False
        )

    async def get_trigger(self, name: str) -> glue_pb2.GetTriggerResponse:
        """GetTrigger.

        Raises:
            EntityNotFoundException: no such trigger.
        """
        message = glue_pb2.GetTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.GetTrigger(message, timeout=self.timeout), read_only=True
        )

    async def get_triggers(
        self,
        *,
        dependent_job_name: str | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.GetTriggersResponse:
        """GetTriggers: one page of trigger definitions in name order.

        With ``dependent_job_name``, the triggers whose actions start that job - and, as AWS
        documents, every trigger when none does.
        """
        message = glue_pb2.GetTriggersRequest(
            dependent_job_name=dependent_job_name, next_token=next_token, max_results=max_results
        )
        return await self._call(
            lambda: self._stub.GetTriggers(message, timeout=self.timeout), read_only=True
        )

    async def list_triggers(
        self,
        *,
        dependent_job_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.ListTriggersResponse:
        """ListTriggers: one page of trigger names, only triggers having every tag in ``tags``.

        ``dependent_job_name`` filters as in ``get_triggers``.
        """
        message = glue_pb2.ListTriggersRequest(
            dependent_job_name=dependent_job_name,
            tags=dict(tags or {}),
            next_token=next_token,
            max_results=max_results,
        )
        return await self._call(
            lambda: self._stub.ListTriggers(message, timeout=self.timeout), read_only=True
        )

    async def batch_get_triggers(
        self, trigger_names: Sequence[str]
    ) -> glue_pb2.BatchGetTriggersResponse:
        """BatchGetTriggers: the triggers found and the names not found (TriggersNotFound)."""
        message = glue_pb2.BatchGetTriggersRequest(trigger_names=list(trigger_names))
        return await self._call(
            lambda: self._stub.BatchGetTriggers(message, timeout=self.timeout), read_only=True
        )

    async def iter_triggers(
        self, *, dependent_job_name: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[glue_pb2.Trigger]:
        """Every trigger definition, following GetTriggers' NextToken."""
        async for trigger in _follow_pages(
            lambda token: self.get_triggers(
                dependent_job_name=dependent_job_name, next_token=token, max_results=page_size
            ),
            lambda page: page.triggers,
        ):
            yield trigger

    async def iter_trigger_names(
        self,
        *,
        dependent_job_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[str]:
        """Every trigger name (having all of ``tags``), following ListTriggers' NextToken."""
        async for name in _follow_pages(
            lambda token: self.list_triggers(
                dependent_job_name=dependent_job_name,
                tags=tags,
                next_token=token,
                max_results=page_size,
            ),
            lambda page: page.trigger_names,
        ):
            yield name

    async def start_trigger(self, name: str) -> glue_pb2.StartTriggerResponse:
        """StartTrigger: activates a SCHEDULED or CONDITIONAL trigger; fires an ON_DEMAND one.

        Never retried: a start whose answer was lost may have fired an ON_DEMAND trigger.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger.
            ServiceUnavailableException: the scheduler is down (the reconciler finishes an
                activation when it is back).
        """
        message = glue_pb2.StartTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.StartTrigger(message, timeout=self.timeout), read_only=False
        )

    async def stop_trigger(self, name: str) -> glue_pb2.StopTriggerResponse:
        """StopTrigger: deactivates; runs already started keep running.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: a CREATED (never started) or EVENT trigger.
        """
        message = glue_pb2.StopTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.StopTrigger(message, timeout=self.timeout), read_only=False
        )

    async def fire_trigger(self, name: str) -> glue_pb2.FireTriggerResponse:
        """FireTrigger (not a Glue operation): fire the trigger's actions once, now.

        Works in any state but for EVENT triggers; the fire is a ledger entry like any other.
        Never retried: a fire whose answer was lost may have started runs.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger.
        """
        message = glue_pb2.FireTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.FireTrigger(message, timeout=self.timeout), read_only=False
        )

    async def get_trigger_fires(
        self, name: str, *, max_results: int | None = None
    ) -> glue_pb2.GetTriggerFiresResponse:
        """GetTriggerFires (not a Glue operation): the fire ledger, newest first.

        ``max_results``: at most this many entries (the service's default is 20, its limit 200).

        Raises:
            EntityNotFoundException: no such trigger.
        """
        message = glue_pb2.GetTriggerFiresRequest(name=name, max_results=max_results)
        return await self._call(
            lambda: self._stub.GetTriggerFires(message, timeout=self.timeout), read_only=True
        )
