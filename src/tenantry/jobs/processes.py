"""A process pool whose tasks run with the tenant current at submit time."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import ParamSpec, TypeVar

from ..context import carry

P = ParamSpec("P")
R = TypeVar("R")


class TenantProcessPool(ProcessPoolExecutor):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` that carries the current tenant.

    A context cannot cross a process boundary, so the tenant travels by *name*: ``submit``
    (and ``map``, which uses it) wraps the function with :func:`~tenantry.carry`, and the
    worker process re-selects that tenant around the call. The function must be picklable
    (defined at module level), as with any process pool. The worker builds its own
    :class:`~tenantry.Tenancy` (engines cannot be pickled either): typically a module-level
    one that ``tenancy.session()`` then routes to the carried tenant.
    """

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        return super().submit(carry(fn), *args, **kwargs)
