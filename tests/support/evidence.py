"""Counts of what the evidence tests did (operations, faults, rows checked, leaks).

Set ``TENANTRY_EVIDENCE=/path/file.jsonl`` to have each evidence test append one JSON line;
docs/isolation.md publishes the sums of one such run.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter

_lock = threading.Lock()


class Tally(Counter[str]):
    """A thread-safe counter that a test writes out once at its end."""

    def add(self, key: str, n: int = 1) -> None:
        with _lock:
            self[key] += n

    def publish(self, test: str) -> None:
        path = os.environ.get("TENANTRY_EVIDENCE")
        if path:
            with _lock, open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"test": test, **self}) + "\n")
        self.clear()
