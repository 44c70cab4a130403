"""The operator console: a small server-side web app showing the fleet (``tenantry console``).

Read-only unless built with ``writable=True``; every request needs the console's token. See
docs/console.md.
"""

from __future__ import annotations

from .app import console_app

__all__ = ["console_app"]
