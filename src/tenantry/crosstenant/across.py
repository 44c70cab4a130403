"""Cross-tenant reads: run one read-only statement in many tenants, rows tagged by tenant.

Tenants reached through the same engine (all schema tenants: one database) are batched: the
statement is compiled once, rendered per tenant schema, and ``chunk`` tenants are sent as one
``UNION ALL`` with the tenant's name as a literal first column. Each batch runs in a
``READ ONLY`` transaction. Tenants of other databases are batched per database. In strict mode
no tenant is read as the application: with ``strict=True`` each tenant is read in its own
transaction as its role (``SET LOCAL ROLE``, so no batching), with ``strict="login"`` on its own
login engine.

Raw SQL (``text()``, the CLI) names tenant tables with the placeholder schema:
``SELECT count(*) FROM __tenant__.orders`` (shared tables: ``public.users``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.engine import Engine
from sqlalchemy.sql import CompoundSelect, Select, TextClause
from sqlalchemy.sql.compiler import Compiled

from ..core import Core
from ..core.records import Where
from ..core.registry import TenantInfo
from ..errors import NotReadOnly, UnknownTenant
from ..hooks.statements import statement_tables
from ..models import TENANT_SCHEMA
from ..names import quote, validate_name
from ..strict.logins import LoginRoles
from ..strict.rolenames import ROLE_OPTION, role_name

#: Name of the literal column that carries the tenant in the batched SQL.
TENANT_COLUMN = "tenantry_tenant"
DEFAULT_CHUNK = 250
_PLACEHOLDER = re.compile(rf'(?<![\w".]){TENANT_SCHEMA}\.|"{TENANT_SCHEMA}"\.')
_TRAILING = re.compile(r"[\s;]+$")


class TenantRow(NamedTuple):
    """One result row of one tenant."""

    tenant: str
    row: tuple[Any, ...]
    columns: tuple[str, ...]

    def mapping(self) -> dict[str, Any]:
        """The row as ``{column: value}`` (later duplicates of a column name win)."""
        return dict(zip(self.columns, self.row, strict=True))


@dataclass(frozen=True)
class _Template:
    """A statement compiled once, renderable for any tenant schema."""

    sql: str
    params: dict[str, Any]
    compiled: Compiled | None

    def render(self, schema: str) -> str:
        if self.compiled is not None:  # SQLAlchemy statement: schema tokens
            return self.compiled.preparer._render_schema_translates(
                self.sql, {TENANT_SCHEMA: schema}
            )
        return _PLACEHOLDER.sub(lambda _: quote(schema) + ".", self.sql)


def check_read_only(statement: Any) -> None:
    """Raise :class:`NotReadOnly` unless ``statement`` is a SELECT (or raw SQL text)."""
    if isinstance(statement, str | Select | CompoundSelect | TextClause):
        return
    raise NotReadOnly(type(statement).__name__, statement_tables(statement))


def _template(statement: Any, engine: Engine) -> _Template:
    if isinstance(statement, str):
        statement = TextClause(statement)
    if isinstance(statement, TextClause):
        compiled = statement.compile(dialect=engine.dialect)
        sql = _TRAILING.sub("", compiled.string)
        if not _PLACEHOLDER.search(sql):
            raise NotReadOnly(
                f"raw SQL that names no tenant table (write {TENANT_SCHEMA}.table)", []
            )
        return _Template(sql, dict(compiled.params), None)
    compiled = statement.compile(
        dialect=engine.dialect,
        schema_translate_map={TENANT_SCHEMA: TENANT_SCHEMA},
        compile_kwargs={"render_postcompile": True},
    )
    return _Template(compiled.string, dict(compiled.params), compiled)


def _batch_sql(template: _Template, infos: Sequence[TenantInfo]) -> str:
    # Safe: tenant names are validated ([a-z0-9_]+) and schemas are quoted identifiers.
    parts = [
        f"SELECT '{validate_name(i.name, prefix='')}' AS {TENANT_COLUMN}, q.* "  # noqa: S608
        f"FROM ({template.render(i.schema)}) AS q"
        for i in infos
    ]
    return "\nUNION ALL\n".join(parts)


def _chunks(infos: Sequence[TenantInfo], size: int) -> Iterator[Sequence[TenantInfo]]:
    for start in range(0, len(infos), size):
        yield infos[start:start + size]


def _run_batch(
    engine: Engine, template: _Template, infos: Sequence[TenantInfo], stream: bool
) -> Iterator[TenantRow]:
    sql = _batch_sql(template, infos)
    options: dict[str, Any] = {"postgresql_readonly": True}  # BEGIN READ ONLY
    if stream:
        options.update(stream_results=True, yield_per=1000)
    with engine.connect().execution_options(**options) as conn, conn.begin():
        result = conn.exec_driver_sql(sql, template.params)
        columns = tuple(result.keys())[1:]
        for row in result:
            yield TenantRow(row[0], tuple(row[1:]), columns)


def select_tenants(
    core: Core, tenants: Iterable[str] | None, where: Where | None = None
) -> list[TenantInfo]:
    """Registry rows of ``tenants`` (default: every usable tenant), in name order; with
    ``where``, only those whose record matches."""
    if tenants is None:
        return [i for i in core.store.all(where) if i.usable]
    wanted = list(dict.fromkeys(tenants))
    for name in wanted:
        validate_name(name, core.prefix)
    known = {i.name: i for i in core.store.all()}
    missing = [n for n in wanted if n not in known or not known[n].usable]
    if missing:
        raise UnknownTenant(missing[0], f"cannot query across {missing}")
    picked = None if where is None else {i.name for i in core.store.all(where)}
    return [known[n] for n in wanted if picked is None or n in picked]


def across(
    core: Core,
    statement: Any,
    tenants: Iterable[str] | None = None,
    *,
    jobs: int = 1,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    where: Where | None = None,
) -> Iterator[TenantRow]:
    """Run ``statement`` in each tenant (whose record matches ``where``); yield
    :class:`TenantRow` as results arrive.

    Checked at call time, before any row is asked for: a statement that is not read-only
    (:class:`NotReadOnly`) and unknown tenants (:class:`UnknownTenant`). ``jobs`` batches run
    concurrently (one connection each); ``progress(n)`` is called after each batch with the
    number of tenants it covered.
    """
    check_read_only(statement)
    infos = select_tenants(core, tenants, where)
    reader = _reader(core)
    groups: dict[int, tuple[Engine, list[TenantInfo]]] = {}
    for info in infos:
        engine = reader(info)
        groups.setdefault(id(engine), (engine, []))[1].append(info)
    batches = [
        (engine, template, part)
        for engine, members in groups.values()
        for template in [_template(statement, engine)]
        for part in _chunks(members, max(1, chunk))
    ]
    if jobs <= 1:
        return _serial(batches, progress)
    return _parallel(batches, jobs, progress)


def _serial(
    batches: list[tuple[Engine, _Template, Sequence[TenantInfo]]],
    progress: Callable[[int], None] | None,
) -> Iterator[TenantRow]:
    for engine, template, part in batches:
        yield from _run_batch(engine, template, part, stream=True)
        if progress is not None:
            progress(len(part))


def _reader(core: Core) -> Callable[[TenantInfo], Engine]:
    """What gives the engine that reads a tenant's tables: in strict mode one acting as the
    tenant's role (a distinct engine per tenant, so each is its own batch)."""
    roles, strategy = core.strict_roles, core.strategy
    if roles is None:
        return lambda info: strategy.engine(info.location)
    if isinstance(roles, LoginRoles):
        logins = roles.engines
        return lambda info: logins.engine(info.location, logins.role(info.location))
    with core.engine.connect() as conn:
        database = roles.database(conn)  # role names carry the main database's name

    def as_role(info: TenantInfo) -> Engine:
        role = role_name(info.location.database or database, info.location.schema)
        return strategy.engine(info.location).execution_options(**{ROLE_OPTION: role})

    return as_role


def _parallel(
    batches: list[tuple[Engine, _Template, Sequence[TenantInfo]]],
    jobs: int,
    progress: Callable[[int], None] | None,
) -> Iterator[TenantRow]:
    def fetch(batch: tuple[Engine, _Template, Sequence[TenantInfo]]) -> list[TenantRow]:
        engine, template, part = batch
        return list(_run_batch(engine, template, part, stream=False))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: list[tuple[Future[list[TenantRow]], int]] = []
        todo = iter(batches)
        for batch in todo:
            pending.append((pool.submit(fetch, batch), len(batch[2])))
            if len(pending) >= jobs:
                break
        while pending:
            future, size = pending.pop(0)
            rows = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((pool.submit(fetch, nxt), len(nxt[2])))
            yield from rows
            if progress is not None:
                progress(size)
