"""Admin work of the async facade: the sync verb in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..tenancy import Tenancy

P = ParamSpec("P")
T = TypeVar("T")


async def in_admin_thread(
    admin: Tenancy, verb: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run the sync ``verb`` of ``admin`` in a worker thread; after-hooks that are coroutine
    functions run on this event loop (:class:`~tenantry.core.events.Events`)."""
    admin.core.events.loop = asyncio.get_running_loop()
    return await asyncio.to_thread(verb, *args, **kwargs)
