"""The facade's verbs, in groups: :class:`~tenantry.Tenancy` is made of them."""

from .operating import OperatingVerbs
from .relocation import RelocationVerbs
from .strict import StrictVerbs
from .transfer import TransferVerbs

__all__ = ["OperatingVerbs", "RelocationVerbs", "StrictVerbs", "TransferVerbs"]
