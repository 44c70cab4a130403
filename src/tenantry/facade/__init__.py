"""The facade's verbs, in groups: :class:`~tenantry.Tenancy` is made of them."""

from .relocation import RelocationVerbs
from .strict import StrictVerbs
from .transfer import TransferVerbs

__all__ = ["RelocationVerbs", "StrictVerbs", "TransferVerbs"]
