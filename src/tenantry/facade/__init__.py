"""The facade's verbs, in groups: :class:`~tenantry.Tenancy` is made of them."""

from .domains import DomainVerbs
from .each import EachVerbs
from .operating import OperatingVerbs
from .records import RecordVerbs
from .relocation import RelocationVerbs
from .strict import StrictVerbs
from .transfer import TransferVerbs

__all__ = [
    "DomainVerbs", "EachVerbs", "OperatingVerbs", "RecordVerbs", "RelocationVerbs",
    "StrictVerbs", "TransferVerbs",
]
