"""What both middlewares share: how a request's tenant is found, and when it is refused."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .rejections import MISSING_TENANT, UNKNOWN_TENANT, Reject, as_tuple
from .resolvers import RequestView, Resolver


class TenantPolicy:
    """Resolvers tried in order, whether a tenant is required, and the two refusals."""

    def __init__(
        self,
        resolvers: Resolver | Sequence[Resolver],
        *,
        required: bool | Callable[[RequestView], bool] = True,
        on_unknown: Reject | Callable[[RequestView, str | None], Reject] = UNKNOWN_TENANT,
        on_missing: Reject | Callable[[RequestView, str | None], Reject] = MISSING_TENANT,
    ) -> None:
        self.resolvers = as_tuple(resolvers)
        self.required = required
        self.on_unknown = on_unknown
        self.on_missing = on_missing

    def needs_tenant(self, view: RequestView) -> bool:
        """Whether a request without a tenant must be refused."""
        return self.required(view) if callable(self.required) else self.required
