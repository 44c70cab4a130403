"""Where the command line writes: results on stdout, messages and progress on stderr."""

from __future__ import annotations

from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True)
