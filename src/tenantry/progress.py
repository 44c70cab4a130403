"""A rich progress display for long per-table operations (export, import) on a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@contextmanager
def table_progress(console: Console, verb: str) -> Iterator[_Callback | None]:
    """Yield a ``progress(table, done, expected)`` callback drawing one bar per table on
    ``console``, or ``None`` when ``console`` is not a terminal."""
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn(f"{verb} [bold]{{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        yield _Callback(bars)


class _Callback:
    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, table: str, done: int, expected: int | None) -> None:
        total = max(expected, done) if expected is not None else None
        task = self.tasks.get(table)
        if task is None:
            task = self.tasks[table] = self.bars.add_task(table, total=total)
        self.bars.update(task, completed=done, total=total)
