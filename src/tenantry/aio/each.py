"""The async counterpart of :class:`tenantry.facade.EachVerbs`: coroutine functions are awaited
on the event loop, plain functions run on worker threads as in the sync facade."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..context import use
from ..core.records import Where
from ..errors import TenantSuspended
from ..jobs.each import EachOutcome, EachReport, EachRun, call, checked_jobs, elapsed, failed
from ..jobs.each import suspended as suspended_outcome
from ..tenancy import Tenancy
from .threads import in_admin_thread


class AsyncEachVerbs:
    """See :class:`tenantry.facade.EachVerbs`."""

    admin: Tenancy
    route: Callable[[str], Awaitable[AsyncEngine]]  # AsyncRouting's (checks the tenant)

    async def each(
        self,
        fn: Callable[[str], Any],
        tenants: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        run: str | None = None,
        on_outcome: Callable[[EachOutcome], None] | None = None,
        where: Where | None = None,
    ) -> EachReport:
        """See :meth:`Tenancy.each`. A coroutine function is awaited on this event loop, up to
        ``jobs`` at once, each call in its own task with the tenant selected (so
        ``async with tenancy.session()`` reaches it); any other callable runs on ``jobs``
        worker threads, as :meth:`Tenancy.each` runs it (its sync sessions:
        ``tenancy.admin.session()``). ``on_outcome`` is called on the event loop."""
        limit = asyncio.Semaphore(checked_jobs(jobs))
        state = EachRun(self.admin.core, run, on_outcome)
        todo = await in_admin_thread(self.admin, state.plan, tenants, where)
        awaited = inspect.iscoroutinefunction(fn)

        async def one(name: str) -> None:
            async with limit:
                if awaited:
                    outcome = await self._await_one(fn, name)
                else:
                    outcome = await asyncio.to_thread(call, self.admin.core, fn, name)
                await asyncio.to_thread(state.record, outcome)
            state.add(outcome)

        async with asyncio.TaskGroup() as group:
            for name in todo:
                group.create_task(one(name))
        return state.report()

    async def _await_one(self, fn: Callable[[str], Any], name: str) -> EachOutcome:
        started = time.perf_counter()
        try:
            await self.route(name)
            with use(name):
                value = await fn(name)
        except TenantSuspended as exc:
            return suspended_outcome(name, exc, started)
        except Exception as exc:
            return failed(name, exc, started)
        return EachOutcome(name, "ok", None, elapsed(started), value)
