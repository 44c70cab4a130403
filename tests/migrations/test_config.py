"""Tenancy.config() for worker processes, and the provisioning options."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from tenantry import ConfigurationError, Tenancy
from tenantry.pgtools import find_program

MakeTenancy = Callable[..., Tenancy]


def test_config_round_trips_and_hides_the_password(make_fleet_tenancy: MakeTenancy) -> None:
    t = make_fleet_tenancy(prefix="org_", provisioning="migrations")
    config = pickle.loads(pickle.dumps(t.config()))
    assert "secret" not in repr(config.__class__("postgresql://u:secret@h/db"))
    rebuilt = config.build()
    try:
        assert rebuilt.prefix == "org_" and rebuilt.core.provisioning == "migrations"
        assert rebuilt.tenant_stream is not None
        assert rebuilt.tenant_stream.head == t.tenant_stream.head  # type: ignore[union-attr]
        assert rebuilt.engine.url == t.engine.url
    finally:
        rebuilt.dispose()


def test_provisioning_options(make_fleet_tenancy: MakeTenancy) -> None:
    with pytest.raises(ConfigurationError, match="provisioning"):
        make_fleet_tenancy(provisioning="clone")
    with pytest.raises(ConfigurationError, match="pg_dump >= 99"):
        find_program("pg_dump", 99)
    replayed = make_fleet_tenancy(provisioning="migrations")
    assert replayed.create_tenant("r").revision == "f003"
    assert replayed.core.templates is None
