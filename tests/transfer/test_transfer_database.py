"""Export/import fidelity and foreign-key cycles with database tenants (two servers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tenantry import Tenancy
from tests.support.transfer import FIDELITY_MIGRATION, exact_snapshot, fidelity_ddl, fill_fidelity


def test_every_value_and_cycle_round_trips_on_database_tenants(
    make_tenancy: Callable[..., Tenancy], migrations_dir: Path, tmp_path: Path
) -> None:
    stream = migrations_dir / "tenant_db"
    migration = FIDELITY_MIGRATION.format(ddl=fidelity_ddl())
    (stream / "versions" / "t003_fidelity.py").write_text(migration)
    t = make_tenancy(tenant_migrations=stream)
    fill_fidelity(t, "acme")
    t.export_tenant("acme", tmp_path / "x")
    copy = t.import_tenant(tmp_path / "x", "copy")
    assert copy.location.server != t.get_tenant("acme").location.server  # another server
    assert exact_snapshot(t, "copy") == exact_snapshot(t, "acme")
