"""Tenant-aware ORM sessions and objects.

* Tenant sessions (``tenancy.session("acme")``) stamp the tenant on every instance they load or
  write (the instance's identity token), refuse instances of other tenants (``add``, ``merge``,
  cascades) and statements naming other tenants, with :class:`~tenantry.TenantMismatch`.
* Admin sessions (:meth:`Tenancy.admin_session`, class :class:`AdminSession`) have no tenant: each
  statement names one (``execution_options(tenant=...)``) and is sent to that tenant's engine;
  lazy loads and refreshes follow the instance's own tenant; each pending instance is inserted
  into the tenant it was :func:`assign`-ed to (or that of the objects it is attached to).
  Identity tokens keep rows of different tenants with equal primary keys apart.
* :func:`tenant_of` tells the tenant of an instance; :func:`assign` sets it on a new one.

The hooks listen on :class:`TenantSession` and :class:`AdminSession` (and their subclasses)
only; async sessions get them through ``sync_session_class=TenantSession``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, ORMExecuteState, Session
from sqlalchemy.orm.state import InstanceState

from ..errors import AdminSessionRequired, TenantMismatch
from ..models import TENANT_SCHEMA
from ..names import validate_name
from .statements import TENANT_OPTION, Resolver, statement_tables, touches_tenant_tables

_ASSIGNED = "tenantry_assigned"
SESSION_TENANT = "tenantry_tenant"  # session.info key set by Tenancy.session()
SESSION_ADMIN = "tenantry_admin"  # session.info key of admin sessions: the resolver


def is_tenant_mapper(mapper: Mapper[Any]) -> bool:
    """Whether ``mapper`` maps a tenant table."""
    return any(getattr(t, "schema", None) == TENANT_SCHEMA for t in mapper.tables)


def _mapper_tables(mapper: Mapper[Any]) -> list[str]:
    return sorted({getattr(t, "name", str(t)) for t in mapper.tables})


def tenant_of(obj: object) -> str | None:
    """The tenant ``obj`` was loaded from, written to or :func:`assign`-ed to.

    ``None`` for instances of shared models and for new instances not yet given a tenant.
    """
    state: InstanceState[Any] = inspect(obj)
    if not is_tenant_mapper(state.mapper):
        return None
    token = state.key[2] if state.key is not None else state.identity_token
    return token if isinstance(token, str) else state.info.get(_ASSIGNED)


def assign(obj: object, tenant: str) -> Any:
    """Mark ``obj`` as belonging to ``tenant``: an admin session inserts it there.

    Returns ``obj``. Re-assigning an instance already loaded from or written to another tenant
    raises :class:`~tenantry.TenantMismatch`.
    """
    validate_name(tenant, prefix="")
    state: InstanceState[Any] = inspect(obj)
    current = tenant_of(obj)
    if state.key is not None and current is not None and current != tenant:
        raise TenantMismatch(
            current, tenant, _mapper_tables(state.mapper),
            message=f"cannot assign a {type(obj).__name__} object of tenant {current!r} "
            f"to tenant {tenant!r}",
        )
    state.info[_ASSIGNED] = tenant
    if state.key is None:
        state.identity_token = tenant
    return obj


class TenantSession(Session):
    """The session of :meth:`Tenancy.session`: ``merge`` refuses instances of other tenants.

    (``add`` and flushes are checked by session events; ``merge`` copies attributes into a new
    instance, so it is checked here, on the instance and its merge cascade.)
    """

    def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        """As :meth:`Session.get`; tenant rows are looked up under the session's tenant, so an
        instance already in the identity map is returned without a query."""
        bound = self.info.get(SESSION_TENANT)
        if bound is not None and "identity_token" not in kwargs:
            mapper = inspect(entity, raiseerr=False)
            if isinstance(mapper, Mapper) and is_tenant_mapper(mapper):
                kwargs["identity_token"] = bound
        return super().get(entity, ident, **kwargs)

    def merge(self, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if self.info.get(SESSION_TENANT) is not None:
            state: InstanceState[Any] = inspect(instance)
            _check_attach(self, instance)
            for obj, *_ in state.mapper.cascade_iterator("merge", state):
                _check_attach(self, obj)
        return super().merge(instance, *args, **kwargs)


class AdminSession(Session):
    """A session without a tenant that routes each statement and each instance to its own.

    Writes to several tenants use one connection (and transaction) per tenant engine; they
    commit one after the other, not atomically across tenants. ORM bulk INSERT/UPDATE by
    parameter lists is not supported here (use one admin Core connection per tenant).
    """

    def __init__(self, resolver: Resolver, **kwargs: Any) -> None:
        info = dict(kwargs.pop("info", None) or {})
        info.update({SESSION_TENANT: None, SESSION_ADMIN: resolver})
        kwargs.setdefault("bind", resolver.engine)
        super().__init__(info=info, **kwargs)
        self.resolver = resolver
        self.connection_callable = self._tenant_connection

    def _tenant_connection(
        self, mapper: Mapper[Any] | None = None, instance: object | None = None, **kw: Any
    ) -> Connection:
        """The connection a flush uses for ``instance``: that of its tenant."""
        tenant = tenant_of(instance) if instance is not None else None
        if tenant is None:
            return self.connection(bind_arguments={"mapper": mapper})
        engine, _ = self.resolver.resolve(tenant)
        return self.connection(bind_arguments={"bind": engine})


def _statement_tenant(state: ORMExecuteState) -> tuple[str | None, str | None]:
    """(tenant named by the statement, tenant of the instance being loaded/refreshed)."""
    named = state.execution_options.get(TENANT_OPTION)
    token = None
    if state.is_select:
        token = _load_identity_token(state)
        origin = state.lazy_loaded_from
        if token is None and origin is not None:
            token = origin.identity_token
    return named, token if isinstance(token, str) else None


def _load_identity_token(state: ORMExecuteState) -> Any:
    """The identity token a load asks for (``Session.get(..., identity_token=...)``, a
    refresh): SQLAlchemy's private ``load_options._identity_token``; tests/test_third_party.py
    checks it."""
    return state.load_options._identity_token


def _route_orm(state: ORMExecuteState) -> None:
    info = state.session.info
    if SESSION_TENANT not in info:
        return  # a session class of ours, but not opened by a Tenancy
    named, token = _statement_tenant(state)
    touches = touches_tenant_tables(state.statement)
    bound = info[SESSION_TENANT]
    if bound is not None:
        for other in (named, token):
            if other is not None and other != bound and touches:
                raise TenantMismatch(bound, other, statement_tables(state.statement))
        if touches:
            state.update_execution_options(identity_token=bound)
        return
    resolver: Resolver | None = info.get(SESSION_ADMIN)
    if named is not None and token is not None and named != token and touches:
        raise TenantMismatch(token, named, statement_tables(state.statement),
                             what="statement (loading an instance of another tenant)")
    tenant = named or token
    if tenant is None:
        return  # shared tables only, or the guard raises NoTenantSelected
    if resolver is None:
        if touches:
            raise AdminSessionRequired(tenant, statement_tables(state.statement))
        return
    engine, _ = resolver.resolve(tenant, state.statement)
    state.bind_arguments["bind"] = engine
    if touches:
        state.update_execution_options(identity_token=tenant)


def _check_attach(session: Session, obj: object) -> None:
    bound = session.info.get(SESSION_TENANT)
    if bound is None:
        return
    tenant = tenant_of(obj)
    if tenant is not None and tenant != bound:
        state: InstanceState[Any] = inspect(obj)
        raise TenantMismatch(bound, tenant, _mapper_tables(state.mapper),
                             what=f"{type(obj).__name__} object")


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if SESSION_TENANT not in session.info:
        return
    bound = session.info[SESSION_TENANT]
    for obj in list(session.new):
        state: InstanceState[Any] = inspect(obj)
        if not is_tenant_mapper(state.mapper):
            continue
        tenant = bound if bound is not None else _tenant_from_graph(state)
        _check_attach(session, obj)
        if tenant is not None:
            state.identity_token = tenant


def _tenant_from_graph(state: InstanceState[Any]) -> str | None:
    """The tenant of a pending instance: its own and that of the objects it is tied to."""
    found: dict[str, None] = {}
    own = tenant_of(state.obj())
    if own is not None:
        found[own] = None
    for obj, _mapper, _state, _dict in state.mapper.cascade_iterator("save-update", state):
        tenant = tenant_of(obj)
        if tenant is not None:
            found[tenant] = None
    if len(found) > 1:
        first, second = list(found)[:2]
        raise TenantMismatch(
            first, second, _mapper_tables(state.mapper),
            message=f"new {state.class_.__name__} object is tied to objects of tenants "
            f"{sorted(found)}",
        )
    return next(iter(found), None)


def _before_attach(session: Session, obj: object) -> None:
    _check_attach(session, obj)


def _listen(session_class: type[Session]) -> None:
    """Add the session hooks to ``session_class`` and its subclasses (idempotent)."""
    if not event.contains(session_class, "do_orm_execute", _route_orm):
        event.listen(session_class, "do_orm_execute", _route_orm)
        event.listen(session_class, "before_attach", _before_attach)
        event.listen(session_class, "before_flush", _before_flush)


# Only tenantry's own sessions carry the hooks: the application's sessions are left alone.
_listen(TenantSession)
_listen(AdminSession)
