"""The domain resolver's cost per request: a cached host, an uncached one, an unknown one,
and the WSGI middleware with ``domains(tenancy)`` against ``host_map`` (a fixed dict).

    python bench/domains.py [--url URL] [--tenants N] [--ops N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from _common import new_database, server, sized
from werkzeug.test import Client

from tenantry import Tenancy
from tenantry.web import WSGITenantMiddleware, domains, host_map


def per_op(fn: Callable[[int], object], ops: int) -> float:
    """Best of three rounds, microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for n in range(ops):
            fn(n)
        best = min(best, time.perf_counter() - start)
    return best / ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--tenants", type=int, default=sized(50, 3))
    parser.add_argument("--ops", type=int, default=sized(20_000, 50))
    args = parser.parse_args()
    with server(args.url) as url:
        tenancy = Tenancy(new_database(url))
        hosts: dict[str, str] = {}
        for t in range(args.tenants):
            tenancy.create_tenant(f"t{t}")
            for d in range(3):
                hosts[tenancy.add_domain(f"t{t}", f"d{d}.t{t}.example")] = f"t{t}"
        names = list(hosts)
        tenancy.core.store.freshness.interval = 3600.0  # no rereads during a round
        cached = per_op(lambda n: tenancy.tenant_for_host(names[n % len(names)]), args.ops)
        misses = max(args.ops // 20, 10)
        uncached = per_op(lambda n: (tenancy.domain_map.clear(),
                                     tenancy.tenant_for_host(names[n % len(names)])), misses)
        unknown = per_op(lambda n: (tenancy.domain_map.clear(),
                                    tenancy.tenant_for_host("nobody.example")), misses)
        print(f"tenant_for_host cached    {cached:8.2f} us")
        print(f"tenant_for_host uncached  {uncached:8.2f} us  (one indexed query)")
        print(f"tenant_for_host unknown   {unknown:8.2f} us")

        def app(environ: object, start_response: Callable[..., object]) -> list[bytes]:
            start_response("200 OK", [])
            return [b""]

        requests = max(args.ops // 10, 10)
        figures = {"host_map": float("inf"), "domains": float("inf")}
        for _ in range(2):  # interleaved: neither side gets the warm-up alone
            for label, resolver in (("host_map", host_map(hosts)),
                                    ("domains", domains(tenancy))):
                client = Client(WSGITenantMiddleware(app, tenancy, resolver))
                figures[label] = min(figures[label], per_op(
                    lambda n, c=client: c.get("/", headers={"Host": names[n % len(names)]}),
                    requests))
        print(f"WSGI request host_map {figures['host_map']:.1f} us, domains "
              f"{figures['domains']:.1f} us: ratio {figures['domains'] / figures['host_map']:.3f}")
        tenancy.dispose()


if __name__ == "__main__":
    main()
