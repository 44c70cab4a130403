"""``tenantry doctor``: compare the registry with what exists, and repair what is safe.

Findings are typed (:class:`Problem`) and each says how it would be fixed. Fixes that cannot
lose data (re-running a migration, deleting the registry row of storage that is already gone,
registering an orphan schema that carries a known revision, making a missing strict-mode role,
removing what an interrupted operation left when :mod:`tenantry.doctor.leftovers` proves it holds
nothing of value, finishing or undoing an operation recorded by an intent) are *safe*; fixes
that destroy data (dropping an orphan schema, finishing an interrupted drop) are
*destructive*, run only when asked for explicitly (``destructive=True``, CLI ``--yes``), and
only with proof (:mod:`tenantry.relocation.proof`): the storage holds no rows, or the same rows as
the registered copy. Without proof the finding has no fix and says what to run. A server that is
down, a database that refuses connections or storage that cannot be read is a finding of its
own: the rest of the fleet is examined all the same.
"""

from .findings import DoctorReport, Finding, Problem
from .repair import Doctor

__all__ = ["Doctor", "DoctorReport", "Finding", "Problem"]
