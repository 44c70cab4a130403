"""Typed errors raised by tenantry. Every one derives from :class:`TenantryError`."""

from __future__ import annotations


class TenantryError(Exception):
    """Base class of every error tenantry raises on purpose."""


class InvalidTenantName(TenantryError, ValueError):
    """A tenant name (or prefix) that cannot become a safe PostgreSQL identifier."""


class NoTenantSelected(TenantryError):
    """A statement touched a tenant table while no tenant was selected."""

    def __init__(self, tables: list[str] | None = None) -> None:
        self.tables = tables or []
        where = f" (tables: {', '.join(self.tables)})" if self.tables else ""
        super().__init__(
            "no tenant selected for a statement on tenant tables"
            f"{where}; use tenancy.session('name'), tenancy.use('name') or "
            "execution_options(tenant='name')"
        )


class UnknownTenant(TenantryError, LookupError):
    """The named tenant is not in the registry (or is not ready)."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        super().__init__(f"unknown tenant {name!r}" + (f": {detail}" if detail else ""))


class TenantSuspended(TenantryError, PermissionError):
    """The tenant is suspended (:meth:`~tenantry.Tenancy.suspend_tenant`): its data is kept
    and migrated, but sessions, requests and jobs are refused until it is resumed."""

    def __init__(self, name: str, reason: str | None = None) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"tenant {name!r} is suspended" + (f": {reason}" if reason else ""))


class TenantExists(TenantryError):
    """The operation would create a tenant (or storage) that already exists."""


class StorageNotFound(TenantryError, LookupError):
    """Storage to adopt (a schema, a database, or a schema in it) does not exist."""


class StorageRegistered(TenantExists):
    """Storage to adopt is registered already, to another tenant."""


class UnfinishedOperation(TenantryError):
    """Another operation on the tenant stopped part-way: finish it first (run it again, or
    ``tenantry doctor --fix``)."""


class ConfirmationRequired(TenantryError):
    """A destructive operation was called without ``confirm=True`` (``--yes`` in the CLI)."""


class MigrationError(TenantryError):
    """Migrations are misconfigured, or a migration failed."""


class UnversionedStorage(MigrationError):
    """Storage to adopt holds tables but no revision of the tenant stream: tenantry cannot
    tell which migrations it has had."""


class ConfigurationError(TenantryError):
    """Tenancy was set up with options that cannot work together."""


class StreamConfigError(MigrationError, ConfigurationError):
    """A migration stream cannot be loaded from where it points: nothing there, no revision
    found, an unreadable file or folder, or an Alembic configuration missing what it needs."""


class RevisionImportError(StreamConfigError):
    """A revision file of a stream does not import (its ``path``; the cause is chained)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        super().__init__(
            f"revision file {path!r} does not import: {type(cause).__name__}: {cause}"
        )


class ClientProgramNotFound(ConfigurationError):
    """No usable PostgreSQL client program (``pg_dump``, ``pg_restore``, ``psql``): missing,
    not runnable, or older than the server (see :mod:`tenantry.pgtools`)."""


class NotConfiguredFor(ConfigurationError):
    """The operation needs this Tenancy set up otherwise (another strategy, strict mode on)."""


class UnknownServer(ConfigurationError, LookupError):
    """A server name that is not among the configured ``servers``."""


class WrongTenantKind(ConfigurationError):
    """The tenant is of another kind (schema or database) than the operation needs."""


class OnlineMoveUnavailable(ConfigurationError):
    """``online=True`` was asked for but the source cannot replicate (``wal_level``...)."""


class DevServerBusy(TenantryError):
    """Another ``tenantry dev`` runs the development servers of that folder already."""

    def __init__(self, folder: object, pid: int | None, urls: list[str]) -> None:
        self.pid, self.urls = pid, urls
        who = f" (pid {pid})" if pid and pid > 0 else ""
        super().__init__(
            f"another tenantry dev{who} runs the servers in {folder}: use them, or stop it "
            "(Ctrl-C there, or tenantry dev --stop)"
        )


class TransferError(TenantryError):
    """Exporting or importing a tenant's data failed (bad archive, checksum, pg_dump...)."""


# -- per-statement tenants, tenant-aware objects, cross-tenant queries (issue 8) --


def _tables(tables: list[str] | None) -> str:
    return f" (tables: {', '.join(tables)})" if tables else ""


class TenantMismatch(TenantryError):
    """A statement or an object names a tenant other than the one its session is bound to."""

    def __init__(self, expected: str, got: str, tables: list[str] | None = None,
                 what: str = "statement", message: str | None = None) -> None:
        self.expected, self.got, self.tables = expected, got, tables or []
        head = message or (
            f"{what} for tenant {got!r} in a session/connection of tenant {expected!r}"
        )
        super().__init__(
            f"{head}{_tables(self.tables)}; open an admin session (tenancy.admin_session()) "
            "to work on several tenants"
        )


class AdminSessionRequired(TenantryError):
    """A statement named its tenant on a session or connection that cannot route per statement."""

    def __init__(self, tenant: str, tables: list[str] | None = None) -> None:
        self.tenant, self.tables = tenant, tables or []
        super().__init__(
            f"statement names tenant {tenant!r}{_tables(self.tables)} but runs on a session or "
            "connection without a tenant; use tenancy.admin_session() / "
            "tenancy.admin_connection(), or tenancy.session(name)"
        )


class TenantElsewhere(TenantryError):
    """A statement names a tenant whose tables live in another database than the connection's."""

    def __init__(self, tenant: str, where: str, tables: list[str] | None = None) -> None:
        self.tenant, self.where, self.tables = tenant, where, tables or []
        super().__init__(
            f"tenant {tenant!r} lives in {where}, not in this connection's database"
            f"{_tables(self.tables)}; use tenancy.connection({tenant!r}) or an admin session"
        )


class NotReadOnly(TenantryError):
    """A cross-tenant query (``across``) was given a statement that is not a plain read."""

    def __init__(self, kind: str, tables: list[str] | None = None) -> None:
        self.kind, self.tables = kind, tables or []
        super().__init__(
            f"across() runs read-only SELECT statements only, not {kind}{_tables(self.tables)}"
        )


# -- database per tenant (issue 3) --


class ConnectionBudgetExceeded(TenantryError):
    """Every connection of the tenant engines' global budget stayed in use past the timeout."""


class MoveError(TenantryError):
    """Moving a tenant to another server failed (the tenant stays where it was)."""


class TemplateError(TenantryError):
    """The tenant template could not be built or applied."""


class TenantIsolationError(TenantryError, PermissionError):
    """Strict mode stopped a tenant's statement from reaching something not its own."""

    def __init__(self, tenant: str, kind: str, name: str, owner: str | None = None) -> None:
        self.tenant, self.kind, self.name, self.owner = tenant, kind, name, owner
        what = f"{kind} {name!r}" + (f" of tenant {owner!r}" if owner is not None else "")
        hint = (
            "" if kind == "schema"
            else " (shared tables need tenancy.grant_shared(...) in strict mode)"
        )
        super().__init__(f"tenant {tenant!r} may not use {what}: permission denied{hint}")


# -- hybrid placement (issue 5) --


class ForeignKeyAcrossDatabases(MoveError, MigrationError):
    """A tenant in a database of its own cannot keep foreign keys to tables outside it:
    promoting a schema tenant whose tables have some, or creating a database tenant whose
    tenant stream (or metadata) declares some (PostgreSQL has no keys across databases)."""

    def __init__(
        self, tenant: str, keys: list[tuple[str, str, str]], *, creating: bool = False
    ) -> None:
        #: ``(table, constraint, referenced table)`` for each such foreign key (on creation
        #: only the referenced table is known: table and constraint are ``""``).
        self.tenant, self.keys = tenant, keys
        if creating:
            refs = ", ".join(sorted({repr(ref) for _, _, ref in keys}))
            super().__init__(
                f"cannot create tenant {tenant!r} in a database of its own: its tables refer "
                f"to {refs}, a table outside it (a shared table of the main database?), and "
                "foreign keys cannot cross databases; keep the tenant stream (or metadata) of "
                "database tenants free of references to shared tables, or create this tenant "
                "in a schema"
            )
            return
        listed = ", ".join(f"{table}.{name} -> {ref}" for table, name, ref in keys)
        super().__init__(
            f"cannot promote tenant {tenant!r} to its own database: foreign keys reference "
            f"tables outside its schema ({listed}); pass drop_foreign_keys=True "
            "(CLI: --drop-foreign-keys) to promote without them"
        )


class AmbiguousRequest(TenantryError, ValueError):
    """An HTTP request names its tenant in a header that it carries more than once."""

    def __init__(self, header: str) -> None:
        self.header = header
        super().__init__(f"header {header!r} appears more than once: which tenant is meant?")


class TenantLoginRefused(TenantryError):
    """Login mode: PostgreSQL refused a connection as a tenant's role (role dropped, no
    ``LOGIN``, or a password set from another login secret: ``Tenancy.reset_logins()``)."""

    def __init__(self, role: str, reason: str) -> None:
        self.role, self.reason = role, reason
        super().__init__(
            f"cannot log in as tenant role {role!r}: {reason} (a dropped tenant, or a login "
            "secret other than the one that set its password: Tenancy.reset_logins())"
        )


class InvalidDomain(TenantryError, ValueError):
    """Not a domain a tenant can have: a port, a scheme, a path, a wildcard, an IP address,
    an empty or too long label, or a name IDNA refuses."""


class DomainTaken(TenantryError):
    """The domain is registered to another tenant already."""

    def __init__(self, domain: str, tenant: str) -> None:
        self.domain, self.tenant = domain, tenant
        super().__init__(f"domain {domain!r} belongs to tenant {tenant!r}")


class UnknownDomain(TenantryError, LookupError):
    """The domain is not registered (to that tenant)."""

    def __init__(self, domain: str, tenant: str | None = None) -> None:
        self.domain, self.tenant = domain, tenant
        super().__init__(f"domain {domain!r} is not registered"
                         + (f" to tenant {tenant!r}" if tenant else ""))


class InvalidRecord(TenantryError, ValueError):
    """A tenant record (:meth:`~tenantry.Tenancy.update_tenant`, ``create_tenant(record=)``)
    or a ``where=`` filter that the record columns refuse: a value of the wrong type, a
    missing required value."""


class UnknownRecordField(InvalidRecord, LookupError):
    """A record field that is not among the Tenancy's ``tenant_columns``."""
