"""Running a function for every tenant, as :class:`~tenantry.Tenancy` names it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core import Core
from ..core.records import Where
from ..jobs import each as each_tenant
from ..jobs.each import EachOutcome, EachReport


class EachVerbs:
    """:meth:`each` (:mod:`tenantry.jobs.each`)."""

    core: Core

    def each(
        self,
        fn: Callable[[str], Any],
        tenants: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        run: str | None = None,
        on_outcome: Callable[[EachOutcome], None] | None = None,
        where: Where | None = None,
    ) -> EachReport:
        """Call ``fn(name)`` for every usable tenant (or those matching the glob ``tenants``)
        with that tenant selected, as in ``with tenancy.use(name)``: ``tenancy.session()``
        inside reaches it.

        ``jobs`` calls run at once, on threads (for I/O-bound work; ``fn`` must be
        thread-safe). A failing tenant is recorded (``failed``, with the error) and does not
        stop the others; suspended tenants are never called (``suspended``). With ``run``
        (an id such as ``"nightly-2026-12-04"``) each outcome is recorded in
        ``public.tenantry_runs`` and calling ``each`` again with the same id skips the
        tenants already ``ok`` (``skipped``): a failed or interrupted run is resumed.
        ``on_outcome`` sees each :class:`~tenantry.EachOutcome` as it is settled; ``where``
        keeps the tenants whose record matches (:meth:`list_tenants`).
        """
        return each_tenant.each(self.core, fn, tenants, jobs=jobs, run=run,
                                on_outcome=on_outcome, where=where)
