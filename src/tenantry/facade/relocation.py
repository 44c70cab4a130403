"""Moving tenants between servers and strategies, as :class:`~tenantry.Tenancy` names it."""

from __future__ import annotations

from ..core import Core
from ..core.registry import TenantInfo
from ..relocation import relocate


class RelocationVerbs:
    """Moves, promotions and demotions (:mod:`tenantry.relocation`)."""

    core: Core

    def move_tenant(
        self, name: str, to: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """Move database tenant ``name`` to server ``to``; idempotent.

        Copy the tenant, check every table's row count and every sequence, switch the registry
        row, drop the source. Reads go on throughout. Online (logical replication; the default
        when the source server has ``wal_level = logical``, required by ``online=True``),
        writes wait only for the switch; offline (``online=False``, or no logical WAL), they
        wait for the whole ``pg_dump | pg_restore`` copy (details in the docs).
        """
        return relocate.move(self.core, name, to, lock_timeout=lock_timeout, online=online)

    def promote_tenant(
        self, name: str, *, to_server: str | None = None, drop_foreign_keys: bool = False,
        lock_timeout: str = "30s", online: bool | None = None,
    ) -> TenantInfo:
        """Move schema tenant ``name`` into its own database (same schema name); idempotent.

        ``to_server`` defaults to the placement policy's choice. Foreign keys from the tenant's
        tables to other schemas raise :class:`ForeignKeyAcrossDatabases` unless
        ``drop_foreign_keys=True`` (the copy is made without them). Reads go on throughout;
        writes wait only for the switch when online, for the whole copy when offline
        (``online`` as for :meth:`move_tenant`; see docs/hybrid.md).
        """
        return relocate.promote(self.core, name, to_server=to_server,
                                drop_foreign_keys=drop_foreign_keys, lock_timeout=lock_timeout,
                                online=online)

    def demote_tenant(
        self, name: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """Move database tenant ``name`` back into a schema of the main database; idempotent.

        The tenant's database is dropped after the registry switch. What waits, and ``online``,
        as for :meth:`promote_tenant`.
        """
        return relocate.demote(self.core, name, lock_timeout=lock_timeout, online=online)
