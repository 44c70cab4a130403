"""What each kind of engine hook costs per connection and statement, in SQLAlchemy itself.

One engine per hook (tenantry's own, one at a time, then all of them; and a no-op listener of a
connection event and of a dialect event for comparison); each opens a connection, runs
``SELECT 1`` and rolls back. Rounds are interleaved and each engine's best round kept.

A connection event listener on an engine (``before_execute``, ``before_cursor_execute``,
``begin``) makes every connection of that engine join the engine's dispatch and build its
listener collections lazily: a fixed cost whatever the listener does. Dialect events
(``do_execute``, ``handle_error``) and pool events are not joined per connection.

    python bench/hooks_floor.py [--url URL] [--ops N] [--rounds R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import sqlalchemy as sa
from _common import new_database, server, sized

from tenantry import make_engine
from tenantry.hooks import guard, poolreset
from tenantry.hooks.instrumentation import instrument
from tenantry.strict import denials


def noop(*args: object) -> None:
    return None


HOOKS: dict[str, list[Callable[[sa.Engine], None]]] = {
    "none": [],
    "guard (do_execute: dialect)": [guard.install],
    "denials (handle_error: dialect)": [denials.install_hooks],
    "poolreset (reset: pool)": [poolreset.install],
    "all of tenantry's (instrument)": [instrument],
    "no-op before_cursor_execute": [lambda e: sa.event.listen(e, "before_cursor_execute", noop)],
    "no-op do_execute": [lambda e: sa.event.listen(e, "do_execute", noop)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--ops", type=int, default=sized(400, 10))
    parser.add_argument("--rounds", type=int, default=sized(15, 2))
    args = parser.parse_args()
    with server(args.url) as url:
        run(new_database(url), args.ops, args.rounds)


def run(url: str, ops: int, rounds: int) -> None:
    engines = {}
    for name, installs in HOOKS.items():
        engine = make_engine(url)
        for install in installs:
            install(engine)
        engines[name] = engine
    query = sa.text("SELECT 1")

    def per_op(engine: sa.Engine, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            with engine.connect() as conn:
                conn.execute(query).one()
                conn.rollback()
        return (time.perf_counter() - start) / n

    for engine in engines.values():
        per_op(engine, max(1, ops // 2))
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(rounds):
        for name, engine in engines.items():
            best[name] = min(best[name], per_op(engine, ops))
    base = best["none"]
    print(f"{'hooks':42} {'µs':>7} {'added µs':>9} {'ratio':>6}")
    for name, value in best.items():
        print(f"{name:42} {value * 1e6:7.1f} {(value - base) * 1e6:9.1f} {value / base:6.2f}x")
    for engine in engines.values():
        engine.dispose()


if __name__ == "__main__":
    main()
