"""Revision targets: what a target names, and whether reaching it walks down the history."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Sequence

from alembic.script.revision import RevisionError

from ..errors import MigrationError
from .stream import MigrationStream, is_ancestor


def resolve(stream: MigrationStream, target: str) -> str | None:
    """The revision id ``target`` names (``head``/``heads``/``base`` or a revision prefix)."""
    if target in ("head", "heads"):
        return stream.head
    if target == "base":
        return None
    try:
        found = stream.script.get_revision(target)
    except Exception as exc:  # alembic raises several types for unknown/ambiguous ids
        raise MigrationError(f"unknown revision {target!r}: {exc}") from exc
    if found is None:
        raise MigrationError(f"unknown revision {target!r}")
    return str(found.revision)


def is_downgrade(stream: MigrationStream, current: str | None, target: str | None) -> bool:
    """Whether going from ``current`` to ``target`` means walking down the history."""
    if current is None or current == target:
        return False
    if target is None:
        return True
    return _below(stream, current, target)


@functools.lru_cache(maxsize=64)
def _below(stream: MigrationStream, current: str, target: str) -> bool:
    """Whether ``target`` is below ``current`` (asked for every tenant of a run: cached)."""
    try:
        return is_ancestor(stream.script, current, target)
    except RevisionError:  # a revision the scripts do not know: that tenant fails on its own
        return False


def matches(name: str, patterns: Sequence[str] | None) -> bool:
    """Whether ``name`` matches one of the glob ``patterns`` (no patterns: everything)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

