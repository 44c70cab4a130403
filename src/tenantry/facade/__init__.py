"""The facade's verbs, in groups: :class:`~tenantry.Tenancy` is made of them."""

from .domains import DomainVerbs
from .operating import OperatingVerbs
from .relocation import RelocationVerbs
from .strict import StrictVerbs
from .transfer import TransferVerbs

__all__ = ["DomainVerbs", "OperatingVerbs", "RelocationVerbs", "StrictVerbs", "TransferVerbs"]
