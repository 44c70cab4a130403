"""Where the command line writes: results on stdout, messages and progress on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

#: Width of results written to a pipe or a file: wide enough that tables are never cut (a
#: terminal's own width is used on a terminal).
PIPED_WIDTH = 1000

out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True, soft_wrap=True)
