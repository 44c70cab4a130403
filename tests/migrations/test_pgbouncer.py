"""Schema routing through PgBouncer in transaction pooling mode: no tenant sees another's rows."""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import Tenancy
from tests.app.models import Customer
from tests.support.databases import MIGRATIONS
from tests.support.pgbouncer import pgbouncer

pytestmark = pytest.mark.skipif(
    shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists(),
    reason="pgbouncer not installed (apt-get install -y pgbouncer)",
)

TENANTS = [f"t{i}" for i in range(6)]
# psycopg 3 prepares a statement after 5 runs on a connection; behind transaction pooling the
# next transaction may land on a server connection without it: prepare_threshold=None.
BOUNCER_OPTIONS = {"connect_args": {"prepare_threshold": None}, "pool_size": 8}


@pytest.fixture
def bounced(database_url: str) -> Iterator[Tenancy]:
    with pgbouncer(database_url, pool_size=2) as url:
        t = Tenancy(url, tenant_migrations=MIGRATIONS / "tenant",
                    shared_migrations=MIGRATIONS / "shared", engine_options=BOUNCER_OPTIONS)
        try:
            yield t
        finally:
            t.dispose()


@pytest.mark.slow
def test_no_request_sees_another_tenants_rows(bounced: Tenancy) -> None:
    bounced.migrate_shared()
    for name in TENANTS:  # provisioning (template) and migrations go through the bouncer too
        bounced.create_tenant(name)
        with bounced.session(name) as s:
            s.add_all([Customer(name=f"{name}-{i}") for i in range(20)])
            s.commit()
    assert {t.tenant for t in bounced.migrate_all().by_result("current")} == set(TENANTS)
    errors: list[str] = []
    backends: set[int] = set()
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for step in range(150):
            name = rnd.choice(TENANTS)
            try:
                if step % 3 == 0:
                    with bounced.use(name), bounced.session() as s:  # implicit tenant
                        names = s.scalars(sa.select(Customer.name)).all()
                        pid = s.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
                elif step % 3 == 1:
                    with bounced.session(name) as s, s.begin():  # write + read in one tx
                        s.add(Customer(name=f"{name}-w{seed}-{step}"))
                        s.flush()
                        names = s.scalars(sa.select(Customer.name)).all()
                        pid = s.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
                else:
                    with bounced.connection(name) as conn:
                        names = conn.execute(sa.select(Customer.name)).scalars().all()
                        pid = conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
                        conn.rollback()
            except Exception as exc:
                with lock:
                    errors.append(f"{name}: {exc!r}")
                continue
            wrong = [n for n in names if not n.startswith(f"{name}-")]
            with lock:
                backends.add(pid)
                if wrong or len(names) < 20:
                    errors.append(f"{name} saw {wrong[:3]} ({len(names)} rows)")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert 1 <= len(backends) <= 2  # 8 client threads shared at most 2 server connections
