"""Hybrid tenancy: schema tenants come from the schema template, database tenants from the
template database; both catalog-identical to tenants built by replaying the migrations."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tenantry import Tenancy
from tenantry.names import quote
from tenantry.provisioning.template import templates
from tests.support.catalog import snapshot
from tests.support.databases import FLEET_MIGRATIONS


def _snap(t: Tenancy, name: str) -> dict[str, object]:
    info = t.get_tenant(name)
    engine = t.strategy.engine(info.location)
    with engine.begin() as conn:
        return snapshot(conn, info.schema)


def test_hybrid_schema_tenant_from_the_template(
    make_tenancy: Callable[..., Tenancy], caplog: pytest.LogCaptureFixture
) -> None:
    options = {"strategy": "hybrid", "tenant_migrations": FLEET_MIGRATIONS}
    migrated = make_tenancy(provisioning="migrations", **options)
    migrated.create_tenant("replayed")
    templated = make_tenancy(provisioning="template", **options)
    templated.create_tenant("warm")  # builds the template
    caplog.clear()
    with caplog.at_level(logging.INFO):
        templated.create_tenant("copied")
    copied = templated.get_tenant("copied")
    assert (copied.strategy, copied.location.database, copied.revision) == ("schema", None, "f003")
    messages = [r.getMessage() for r in caplog.records]
    # the schema tenant was filled from the template: no revision of the chain ran for it
    assert f"filled {copied.schema} from the template at f003" in messages
    assert not [m for m in messages if m.startswith("migrated ")], messages
    assert not [m for m in messages if m.startswith("Running upgrade")], messages

    caplog.clear()
    with caplog.at_level(logging.INFO):
        templated.create_tenant("own_db", strategy="database")
    own_db = templated.get_tenant("own_db")
    assert own_db.strategy == "database" and own_db.revision == "f003"
    messages = [r.getMessage() for r in caplog.records]
    # the database tenant was cloned from the template database, not filled from the schema dump
    assert f"created database {own_db.location.database} on server {own_db.location.server}" \
        in messages
    assert "built template database" in " ".join(messages)
    assert not [m for m in messages if m.startswith("filled ")], messages
    with templated.engine.connect() as conn:
        assert conn.execute(sa.select(templates.c.head)).scalars().all() == ["f003"]

    expected = _snap(migrated, "replayed")
    assert expected["enums"] and expected["triggers"] and expected["views"]
    assert expected["data"]["customers"]  # seed rows
    got = _snap(templated, "copied")
    for key in expected:
        assert got[key] == expected[key], key


def test_database_tenant_from_the_template_database_identical(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """ALTER SCHEMA ... RENAME leaves function bodies naming the template schema: repointed."""
    options = {"strategy": "hybrid", "tenant_migrations": FLEET_MIGRATIONS}
    migrated = make_tenancy(provisioning="migrations", **options)
    migrated.create_tenant("replayed")
    templated = make_tenancy(**options)
    templated.create_tenant("own_db", strategy="database")
    expected, got = _snap(migrated, "replayed"), _snap(templated, "own_db")
    # a schema-qualified function body names the tenant's schema, not the template's
    assert "tenantry_template" not in str(got["functions"])
    for key in expected:
        assert got[key] == expected[key], key


def test_rename_repoints_functions_that_name_the_schema(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """A function body naming its schema still works after the tenant is renamed."""
    tenancy = make_tenancy(strategy="hybrid", tenant_migrations=FLEET_MIGRATIONS)
    tenancy.create_tenant("small")
    tenancy.create_tenant("big", strategy="database")
    for old, new in (("small", "small2"), ("big", "big2")):
        before = tenancy.get_tenant(old).schema
        info = tenancy.rename_tenant(old, new)
        with tenancy.strategy.engine(info.location).begin() as conn:
            count = conn.exec_driver_sql(f"SELECT {quote(info.schema)}.customer_count()")
            assert count.scalar_one() >= 1  # the seed rows, read through the new name
            definition = conn.exec_driver_sql(
                f"SELECT pg_get_functiondef('{info.schema}.customer_count'::regproc)"
            ).scalar_one()
        assert info.schema in definition and before not in definition.replace(info.schema, "")
