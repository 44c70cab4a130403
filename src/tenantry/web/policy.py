"""What both middlewares share: how a request's tenant is found, and when it is refused."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import AmbiguousRequest
from .rejections import (
    AMBIGUOUS_TENANT,
    MISSING_TENANT,
    SUSPENDED_TENANT,
    UNKNOWN_TENANT,
    Reject,
    as_tuple,
)
from .resolvers import RequestView, Resolution, Resolver, resolve

Handler = Reject | Callable[[RequestView, str | None], Reject]


class TenantPolicy:
    """Resolvers tried in order, whether a tenant is required, and the four refusals."""

    def __init__(
        self,
        resolvers: Resolver | Sequence[Resolver],
        *,
        required: bool | Callable[[RequestView], bool] = True,
        on_unknown: Reject | Callable[[RequestView, str | None], Reject] = UNKNOWN_TENANT,
        on_missing: Reject | Callable[[RequestView, str | None], Reject] = MISSING_TENANT,
        on_ambiguous: Handler = AMBIGUOUS_TENANT,
        on_suspended: Handler = SUSPENDED_TENANT,
    ) -> None:
        self.resolvers = as_tuple(resolvers)
        self.on_suspended = on_suspended
        self.required = required
        self.on_unknown = on_unknown
        self.on_missing = on_missing
        self.on_ambiguous = on_ambiguous

    def decide(self, view: RequestView) -> Resolution | Handler | None:
        """The request's tenant; else the refusal to answer (ambiguous header, or no tenant
        where one is needed); ``None``: go on with no tenant."""
        try:
            found = resolve(view, self.resolvers)
            if found is not None:
                return found
            return self.on_missing if self.needs_tenant(view) else None
        except AmbiguousRequest:
            return self.on_ambiguous

    def needs_tenant(self, view: RequestView) -> bool:
        """Whether a request without a tenant must be refused."""
        return self.required(view) if callable(self.required) else self.required
