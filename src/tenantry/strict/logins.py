"""Login mode (``Tenancy(..., strict="login")``): tenants' connections log in as their own role.

Strict mode (``strict=True``) switches an application connection to the tenant's role with
``SET LOCAL ROLE``; SQL the tenant writes can switch back (``RESET ROLE``). In login mode the
tenant's role is a ``LOGIN`` role and its sessions use connections *logged in as that role*:
there is nothing to switch back to, so it suits tenants that run arbitrary SQL.

* **Credentials.** Each role's password is derived from one application secret
  (``login_secret=`` or ``$TENANTRY_LOGIN_SECRET``) by HMAC-SHA-256 over the role name: nothing
  secret is stored in the database or in engine URLs. The role's password is set as a
  SCRAM-SHA-256 verifier computed here, so the password never travels in SQL or reaches server
  logs; the driver gets it at connect time (a ``do_connect`` hook).
* **Engines.** One small pool per tenant role, from an
  :class:`~tenantry.strategies.engines.EngineRegistry`: the database strategy's own (one LRU and one
  connection budget for every tenant engine) or, for schema tenants, one made here.
* **Roles.** :class:`LoginRoles` extends :class:`~tenantry.strict.roles.StrictRoles`: provisioning
  makes the role ``LOGIN`` (tenant schema as its ``search_path``), a rename sets the password
  of the new name, a drop closes the role's connections first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from ..core.registry import Location
from ..errors import ConfigurationError, TenantIsolationError, TenantLoginRefused
from ..hooks.instrumentation import instrument
from ..names import quote
from ..strategies.database import MAIN_SERVER, DatabaseStrategy
from ..strategies.engines import EngineRegistry
from . import rolecatalog, rolenames
from . import roles as strict

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("tenantry.strict")

#: Execution option of routes that log in as a tenant role: the role's name.
LOGIN_OPTION = "tenantry_login"
#: Environment variable read when no ``login_secret`` is given.
SECRET_ENV = "TENANTRY_LOGIN_SECRET"
MIN_SECRET_LENGTH = 16
SCRAM_ITERATIONS = 4096

_DENIED = "42501"  # insufficient_privilege
_DENIED_FOR = re.compile(r'permission denied (?:for|to set) (\w+(?: \w+)?) "?([^"\s]+)')
_LOGIN_FAILED = ("28000", "28P01")  # invalid_authorization_specification, invalid_password


class LoginSecret:
    """The application secret tenant passwords are derived from; never printed or logged."""

    __slots__ = ("_key",)

    def __init__(self, value: str | bytes) -> None:
        key = value.encode() if isinstance(value, str) else bytes(value)
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"the login secret must be at least {MIN_SECRET_LENGTH} bytes long"
            )
        self._key = key

    def password(self, role: str) -> str:
        """The password of ``role`` (URL-safe base64 of an HMAC-SHA-256: 43 ASCII characters)."""
        digest = hmac.digest(self._key, b"tenantry login v1\0" + role.encode(), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def __repr__(self) -> str:
        return "LoginSecret(<hidden>)"

    def __getstate__(self) -> bytes:  # picklable (worker processes), still never printed
        return self._key

    def __setstate__(self, state: bytes) -> None:
        self._key = state


def resolve_secret(value: str | bytes | LoginSecret | None) -> LoginSecret:
    """``value`` as a :class:`LoginSecret`; ``None``: from ``$TENANTRY_LOGIN_SECRET``."""
    if isinstance(value, LoginSecret):
        return value
    if value is None:
        value = os.environ.get(SECRET_ENV)
        if not value:
            raise ConfigurationError(
                f"strict='login' needs a login secret: pass login_secret=... or set {SECRET_ENV}"
            )
    return LoginSecret(value)


def scram_verifier(password: str, *, salt: bytes | None = None,
                   iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``password`` must be ASCII (SASLprep leaves it unchanged), as :meth:`LoginSecret.password`
    makes them.
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


class LoginEngines:
    """Engines logged in as tenant roles, one pool per role, under one LRU and budget."""

    def __init__(self, registry: EngineRegistry, secret: LoginSecret, main_database: str) -> None:
        self.registry = registry
        self._secret = secret
        self.main_database = main_database
        registry.on_login = self._prepare

    @classmethod
    def for_strategy(
        cls, strategy: object, main: Engine, secret: LoginSecret, options: Mapping[str, Any]
    ) -> LoginEngines:
        """The database strategy's registry (database and hybrid), else a registry of the main
        server made with ``options`` (``max_engines``, ``max_connections``, ``pool_size``...)."""
        if main.url.database is None:
            raise ConfigurationError("strict='login' needs the database name in the URL")
        if isinstance(strategy, DatabaseStrategy):
            registry = strategy.engines
        else:
            registry = EngineRegistry({MAIN_SERVER: main.url}, _make_engine, **options)
        return cls(registry, secret, main.url.database)

    def engine(self, location: Location, role: str) -> Engine:
        """The engine logged in as ``role`` on the database of ``location`` (LRU-cached)."""
        database = location.database or self.main_database
        return self.registry.get(location.server or MAIN_SERVER, database, role)

    async def engine_async(
        self,
        location: Location,
        role: str,
        make: Callable[..., AsyncEngine],
        owner: object,
        on_drop: Callable[[], None] | None = None,
    ) -> AsyncEngine:
        """As :meth:`engine`, an async engine of ``owner`` made by ``make(url, **options)``."""
        database = location.database or self.main_database
        server = location.server or MAIN_SERVER
        return await self.registry.get_async(server, database, make, owner, on_drop, user=role)

    def role(self, location: Location) -> str:
        """The role of the tenant at ``location`` (no query: the URL names the database)."""
        return rolenames.role_name(location.database or self.main_database, location.schema)

    def discard(self, location: Location, role: str) -> None:
        """Forget the engines logged in as ``role``; close their idle connections."""
        database = location.database or self.main_database
        self.registry.discard(location.server or MAIN_SERVER, database, role)

    def _prepare(self, engine: Engine, role: str) -> None:
        """Hooks of a new engine logged in as ``role``: its password, its errors."""
        secret = self._secret

        def supply_password(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
            cparams["password"] = secret.password(role)

        def refused(ctx: ExceptionContext) -> BaseException | None:
            # connecting failed: the role was dropped, cannot log in, or the password differs
            message = str(ctx.original_exception)
            if ctx.connection is None and (
                _sqlstate(ctx) in _LOGIN_FAILED or f'"{role}"' in message
            ):
                return TenantLoginRefused(role, _first_line(message))
            return None

        event.listen(engine, "do_connect", supply_password)
        event.listen(engine, "handle_error", refused)
        event.listen(engine, "handle_error", _translate_denied)


def _make_engine(url: sa.URL, **options: Any) -> Engine:
    engine = sa.create_engine(url, **options)
    instrument(engine)
    return engine


def _sqlstate(ctx: ExceptionContext) -> str | None:
    error = ctx.original_exception
    state = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate",
                                                        None)
    return state if isinstance(state, str) else None


def _first_line(message: str) -> str:
    """The server's reason (the last line of a driver's connection error)."""
    lines = message.strip().splitlines()
    return lines[-1].strip() if lines else "connection refused"


def _translate_denied(ctx: ExceptionContext) -> BaseException | None:
    """A tenant's statement refused by PostgreSQL: :class:`TenantIsolationError`.

    The owner of what was refused is not looked up: tenants of this mode may be hostile, and
    the lookup would need a second connection.
    """
    if _sqlstate(ctx) != _DENIED or ctx.execution_context is None:
        return None
    options = ctx.execution_context.execution_options
    tenant = options.get("tenantry_tenant")
    if tenant is None or options.get(LOGIN_OPTION) is None:
        return None
    match = _DENIED_FOR.search(str(ctx.original_exception))
    kind, name = (match.group(1), match.group(2)) if match else ("object", "?")
    return TenantIsolationError(tenant, kind, name)


class LoginRoles(strict.StrictRoles):
    """Strict-mode roles that log in: provisioned ``LOGIN`` with a derived password."""

    def __init__(self, engine: Engine, engines: LoginEngines, secret: LoginSecret) -> None:
        super().__init__(engine)
        self.engines = engines
        self._secret = secret

    def __repr__(self) -> str:
        return f"<LoginRoles {self.engine.url.render_as_string(hide_password=True)}>"

    def login_engine(self, conn: Connection, location: Location) -> Engine:
        """The engine logged in as the role of the tenant at ``location``, tagged with it."""
        role = self.role(conn, location)
        return self.engines.engine(location, role).execution_options(**{LOGIN_OPTION: role})

    def route(self, engine: Engine, conn: Connection, location: Location) -> Engine:
        """The tenant's own engine (logged in as its role) with ``engine``'s other options."""
        options = engine.get_execution_options()
        keep = {k: v for k, v in options.items() if k != rolenames.ROLE_OPTION}
        return self.login_engine(conn, location).execution_options(**keep)

    def provision(self, conn: Connection, tenant: str, location: Location) -> str:
        """As :meth:`StrictRoles.provision`, and the role may log in (once: idempotent)."""
        role = super().provision(conn, tenant, location)
        query = sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r")
        if not conn.execute(query, {"r": role}).scalar():
            self.log_in(conn, tenant, location)
        return role

    def log_in(self, conn: Connection, tenant: str, location: Location) -> None:
        """Make the tenant's role ``LOGIN`` with its derived password and its schema as
        ``search_path``; on PostgreSQL 16+ it may no longer ``SET ROLE`` to the group."""
        role = self.role(conn, location)
        verifier = scram_verifier(self._secret.password(role))
        conn.exec_driver_sql(
            f"ALTER ROLE {quote(role)} WITH LOGIN PASSWORD {_literal(verifier)}"
        )
        conn.exec_driver_sql(
            f"ALTER ROLE {quote(role)} SET search_path TO {quote(location.schema)}"
        )
        version = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
        if location.database is None and version >= 160000:
            # membership for the shared-table grants (inherited) without a way to act as
            # the group: what a tenant made as the group would be every tenant's
            conn.exec_driver_sql(
                f"GRANT {quote(self.group(conn))} TO {quote(role)} WITH INHERIT TRUE, SET FALSE"
            )
        log.info("role %s of tenant %s may log in", role, tenant, extra={"tenant": tenant})

    def rename(self, conn: Connection, tenant: str, old: Location, new: Location) -> None:
        """As :meth:`StrictRoles.rename`; the password (derived from the name) set again."""
        before = self.role(conn, old)
        self.engines.discard(old, before)
        super().rename(conn, tenant, old, new)
        if rolecatalog.role_exists(conn, self.role(conn, new)):
            self.log_in(conn, tenant, new)

    def drop(self, conn: Connection, tenant: str, location: Location) -> None:
        """Close the role's connections (pooled and others), then drop it as strict mode does."""
        role = self.role(conn, location)
        self.engines.discard(location, role)
        if rolecatalog.role_exists(conn, role):
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = :r AND pid <> pg_backend_pid()"
                ),
                {"r": role},
            )
        super().drop(conn, tenant, location)

    def dispose(self) -> None:
        """Close the login engines' pools (a registry shared with the strategy: its own)."""
        self.engines.registry.dispose()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
