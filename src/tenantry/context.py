"""The implicit tenant: a ContextVar, and helpers that carry it into threads and processes."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from .names import check_syntax

P = ParamSpec("P")
R = TypeVar("R")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tenantry_tenant", default=None
)


def current_tenant() -> str | None:
    """The tenant selected in this context, or ``None``."""
    return _current.get()


@contextmanager
def use(name: str | None) -> Iterator[str | None]:
    """Select ``name`` as the implicit tenant for the enclosed block (``None`` clears it).

    The selection follows :mod:`contextvars` rules: asyncio tasks created inside inherit it;
    plain threads do not (use :func:`carry`, :func:`run_in_thread` or :class:`ContextExecutor`).
    """
    if name is not None:
        check_syntax(name)  # the prefix-dependent checks happen where the name is used
    token = _current.set(name)
    try:
        yield name
    finally:
        _current.reset(token)


def enter(name: str | None) -> contextvars.Token[str | None]:
    """Make ``name`` current until :func:`leave` is given the token: for hooks that cannot wrap
    a block (task signals, a request's context). The caller has checked the name."""
    return _current.set(name)


def leave(token: contextvars.Token[str | None]) -> None:
    """Undo the :func:`enter` that returned ``token`` (``ValueError``: another context's)."""
    _current.reset(token)


@contextmanager
def working_on(name: str) -> Iterator[None]:
    """Make registered tenant ``name`` current for tenantry's own work on it (migrations), so
    logs name it; unlike :func:`use`, no syntax check (a registered name may predate one)."""
    token = enter(name)
    try:
        yield
    finally:
        leave(token)


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so that it runs with the tenant that is current *now*, wherever it is called.

    Works across threads. For processes and task queues, where a context cannot travel, it
    re-selects the captured tenant by name (the wrapper is picklable when ``fn`` is).
    """
    return _Carried(fn, current_tenant())


class _Carried:
    # no __slots__: functools.update_wrapper must set __module__, __doc__... on the instance
    def __init__(self, fn: Callable[..., Any], tenant: str | None) -> None:
        self.fn = fn
        self.tenant = tenant
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with use(self.tenant):
            return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Carried, (self.fn, self.tenant))


def run_in_thread(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn(*args, **kwargs)`` in a new thread with the current tenant; return its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(carry(fn), *args, **kwargs).result()


class ContextExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run with the tenant current at ``submit`` time."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        return super().submit(carry(fn), *args, **kwargs)
