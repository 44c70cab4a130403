"""Sync/async parity: every public Tenancy method has an AsyncTenancy counterpart with the same
parameters, or is listed in ``tenantry.aio.SYNC_ONLY`` with the reason."""

from __future__ import annotations

import inspect

import pytest

from tenantry import Tenancy
from tenantry.aio import SYNC_ONLY, AsyncTenancy


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    """The class's public methods, its verb groups' (base classes) included."""
    return {
        name: inspect.signature(member)
        for klass in reversed(cls.__mro__[:-1])
        for name, member in vars(klass).items()
        if callable(member) and not name.startswith("_")
    }


SYNC = _public_methods(Tenancy)


def test_the_sync_facade_is_seen_whole() -> None:
    assert {"create_tenant", "session", "migrate_all", "across", "doctor"} <= set(SYNC)
    assert len(SYNC) >= 34


@pytest.mark.parametrize("name", sorted(set(SYNC) - set(SYNC_ONLY)))
def test_async_counterpart_has_the_same_parameters(name: str) -> None:
    counterpart = getattr(AsyncTenancy, name, None)
    assert counterpart is not None, f"AsyncTenancy.{name} is missing (or list it in SYNC_ONLY)"

    def shape(sig: inspect.Signature) -> list[tuple[str, object, object]]:
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    assert shape(inspect.signature(counterpart)) == shape(SYNC[name])


def test_sync_only_methods_exist_and_say_why() -> None:
    for name, reason in SYNC_ONLY.items():
        assert name in SYNC and not hasattr(AsyncTenancy, name), name
        assert len(reason) > 20, name


def test_async_admin_methods_are_coroutines_or_async_iterators() -> None:
    """Whatever does I/O is awaited (engine_metrics reads counters only)."""
    for name in set(SYNC) - set(SYNC_ONLY) - {"engine_metrics", "session", "connection",
                                               "use", "on"}:
        member = getattr(AsyncTenancy, name)
        assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name
