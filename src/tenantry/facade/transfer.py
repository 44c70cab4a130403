"""Export and import of one tenant's data, as :class:`~tenantry.Tenancy` names them."""

from __future__ import annotations

from pathlib import Path

from .. import transfer
from ..core import Core
from ..core.registry import TenantInfo
from ..transfer import Manifest, Progress


class TransferVerbs:
    """Export and import (:mod:`tenantry.transfer`)."""

    core: Core

    def export_tenant(
        self, name: str, dest: str | Path, *, pg_dump: bool = False,
        progress: Progress | None = None,
    ) -> Manifest:
        """Write tenant ``name``'s data to directory ``dest`` (JSON Lines + manifest.json,
        and a ``pg_dump -Fc`` archive of its schema with ``pg_dump=True``); returns the
        :class:`~tenantry.transfer.Manifest`. See :func:`tenantry.transfer.export_tenant`."""
        return transfer.export_tenant(self.core, name, dest, pg_dump=pg_dump, progress=progress)

    def import_tenant(
        self, src: str | Path, as_name: str, *, replace: bool = False, upgrade: bool = True,
        progress: Progress | None = None,
    ) -> TenantInfo:
        """Create tenant ``as_name`` from the export in ``src``. An existing ``as_name`` is
        refused unless ``replace=True`` (which drops it: that is the confirmation). See
        :func:`tenantry.transfer.import_tenant`."""
        return transfer.import_tenant(self.core, src, as_name, replace=replace, upgrade=upgrade,
                                      progress=progress)
