"""FastAPI dependencies: the request's tenant, and an async session routed to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from ..context import current_tenant

if TYPE_CHECKING:
    from ..aio import AsyncTenancy


def require_tenant() -> str:
    """FastAPI dependency: the tenant the middleware selected; HTTP 400 if there is none."""
    name = current_tenant()
    if name is None:
        raise HTTPException(status_code=400, detail="no tenant in request")
    return name


def tenant_session(
    tenancy: AsyncTenancy, **session_options: Any
) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A FastAPI dependency yielding an :class:`AsyncSession` of the request's tenant.

    ``Session = Annotated[AsyncSession, Depends(tenant_session(tenancy))]``. The session is
    closed after the response; commit explicitly. HTTP 400 when no tenant was selected.
    """

    async def dependency() -> AsyncIterator[AsyncSession]:
        async with tenancy.session(require_tenant(), **session_options) as session:
            yield session

    return dependency
