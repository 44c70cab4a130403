"""mkdocs hook: the Sphinx roles of tenantry's docstrings (``:class:`~tenantry.Tenancy```)
shown as code (``Tenancy``): mkdocstrings renders docstrings as Markdown, roles and all."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj):<code>(~?)([^<]+)</code>")


def shown(match: re.Match[str]) -> str:
    """``~a.b.C`` as ``C`` (as Sphinx shows it), any other target as written."""
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"<code>{name}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub(shown, html)
