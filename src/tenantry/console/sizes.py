"""Size on disk of tenants, from the catalogs (read-only): a schema tenant's is the total size
(indexes and TOAST included) of its schema's tables, a database tenant's its database's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa

from ..core.registry import TenantInfo
from ..strategies.database import DatabaseStrategy
from ..tenancy import Tenancy

#: Tables and materialized views (a partitioned table's data is in its partitions).
_SCHEMA_SIZES = sa.text(
    "SELECT n.nspname, CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS bigint) "
    "FROM pg_namespace n LEFT JOIN pg_class c "
    "ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm') "
    "WHERE n.nspname = ANY(:schemas) GROUP BY n.nspname"
)
_DATABASE_SIZES = sa.text(
    "SELECT datname, pg_database_size(datname) FROM pg_database "
    "WHERE datname = ANY(:databases) AND has_database_privilege(datname, 'CONNECT')"
)


def sizes(tenancy: Tenancy, infos: Sequence[TenantInfo]) -> dict[str, int | None]:
    """Bytes on disk per tenant name; ``None`` when unknown (storage missing, server
    unreachable, no privilege). One query for the schema tenants, one per server for the
    database tenants."""
    found: dict[str, int | None] = dict.fromkeys((i.name for i in infos), None)
    in_main = [i for i in infos if i.location.database is None]
    if in_main:
        with tenancy.core.store.begin() as conn:
            schemas = [i.schema for i in in_main]
            rows = conn.execute(_SCHEMA_SIZES, {"schemas": schemas})
            by_schema: dict[str, object] = {row[0]: row[1] for row in rows}
        found.update({i.name: _int(by_schema.get(i.schema)) for i in in_main})
    by_server: dict[str, list[TenantInfo]] = defaultdict(list)
    for info in infos:
        if info.location.database is not None:
            by_server[DatabaseStrategy.server_of(info.location)].append(info)
    for server, infos_there in by_server.items():
        found.update(_database_sizes(tenancy, server, infos_there))
    return found


def _database_sizes(
    tenancy: Tenancy, server: str, infos: Sequence[TenantInfo]
) -> dict[str, int | None]:
    strategy = tenancy.strategy
    if not isinstance(strategy, DatabaseStrategy) or server not in strategy.servers:
        return {}
    databases = [i.location.database for i in infos]
    try:
        with strategy.admin(server).connect() as conn:
            rows = conn.execute(_DATABASE_SIZES, {"databases": databases})
            by_database: dict[str | None, object] = {row[0]: row[1] for row in rows}
    except sa.exc.DBAPIError:  # the server is down or refuses us: sizes unknown, page still shown
        return {}
    return {i.name: _int(by_database.get(i.location.database)) for i in infos}


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None


def human(size: int | None) -> str:
    """``size`` bytes for people: ``"12.3 MB"``; ``"n/a"`` when unknown."""
    if size is None:
        return "n/a"
    if size < 1024:
        return f"{size} B"
    value, units = size / 1024, ["kB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.1f} {units[0]}"
