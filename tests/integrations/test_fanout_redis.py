"""Celery fan-out end to end on a real broker: redis-server, a worker in its own process with
an embedded beat. Messages fanned out before the worker starts wait in Redis; a tenant suspended
meanwhile is refused by the worker; the beat entry fans out on schedule."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from tenantry import Tenancy, TenantSuspended, tenant_key
from tenantry.jobs import celery as tenantry_celery
from tenantry.jobs import fanout

pytest.importorskip("celery")


def _absent(what: str) -> None:
    """Skip locally, fail in CI (.ci/run installs it, and sets TENANTRY_CI)."""
    message = f"{what} (CI installs it: .ci/run, pip install -e '.[test]')"
    if os.environ.get("CI") or os.environ.get("TENANTRY_CI"):
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)


if shutil.which("redis-server") is None:
    _absent("redis-server is not installed: apt-get install redis-server")
if importlib.util.find_spec("redis") is None:
    _absent("the redis client is not installed: pip install 'celery[redis]'")

APP = '''
import os
from pathlib import Path

import celery
import sqlalchemy as sa
from tenantry import TENANT_SCHEMA, Tenancy, current_tenant
from tenantry.jobs import fanout

tenancy = Tenancy(os.environ["APP_DATABASE"])
app = celery.Celery("fanapp", broker=os.environ["APP_BROKER"], backend=os.environ["APP_BROKER"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                broker_connection_retry_on_startup=True)
fanout.register(app, tenancy)
customers = sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.Text), schema=TENANT_SCHEMA)


@app.task(name="fanapp.stamp", base=fanout.TenantTask)
def stamp(label):
    Path(os.environ["APP_STARTED"], current_tenant()).touch()  # the body ran for this tenant
    with tenancy.session() as session:
        session.execute(customers.insert().values(name=label))
        session.commit()
    return current_tenant()


if os.environ.get("APP_BEAT"):
    app.conf.beat_schedule = {
        "stamp": fanout.beat_entry(stamp, 1.0, ["a*", "g*"], args=("beat",)),
    }
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def project(tmp_path: Path, database_url: str, redis_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, ModuleType]]:
    """The application module in a folder, loaded in this process (the producer)."""
    (tmp_path / "fanapp.py").write_text(APP)
    (tmp_path / "started").mkdir()
    monkeypatch.setenv("APP_DATABASE", database_url)
    monkeypatch.setenv("APP_BROKER", redis_url)
    monkeypatch.setenv("APP_STARTED", str(tmp_path / "started"))
    spec = importlib.util.spec_from_file_location("fanapp", tmp_path / "fanapp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield tmp_path, module
    finally:
        tenantry_celery.uninstall()
        module.tenancy.dispose()


@pytest.fixture
def start_worker(project: tuple[Path, ModuleType]) -> Iterator[object]:
    folder, _ = project
    workers: list[subprocess.Popen[str]] = []

    def start() -> None:
        env = dict(os.environ, APP_BEAT="1",
                   PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "fanapp", "worker", "--pool", "solo",
             "--beat", "--schedule", str(folder / "beat-schedule"), "--loglevel", "WARNING"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))

    yield start
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def names_in(tenancy: Tenancy, tenant: str) -> list[str]:
    with tenancy.engine.connect() as conn:  # suspended tenants too: not routed
        table = sa.table("customers", sa.column("name"), schema=f"tenant_{tenant}")
        return list(conn.scalars(sa.select(table.c.name)))


def test_fan_out_through_redis_and_a_worker_process(
    tenancy: Tenancy, project: tuple[Path, ModuleType], start_worker: object
) -> None:
    folder, fanapp = project
    for name in ("acme", "globex", "initech"):
        tenancy.create_tenant(name)
    result = fanout.fan_out(fanapp.stamp, fanapp.tenancy, args=("now",))
    tenancy.suspend_tenant("globex", reason="unpaid")  # before any worker took the messages
    start_worker()  # type: ignore[operator]
    acme, globex, initech = result.results
    assert acme.get(timeout=60) == "acme" and initech.get(timeout=60) == "initech"
    with pytest.raises(TenantSuspended):
        globex.get(timeout=60)
    # the beat entry (every second, a* and g*) fans out to acme only: globex is suspended
    deadline = time.monotonic() + 60
    while "beat" not in names_in(tenancy, "acme") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "beat" in names_in(tenancy, "acme")
    assert names_in(tenancy, "initech") == ["now"]  # not matched by the beat entry's globs
    assert names_in(tenancy, "globex") == []
    assert sorted(p.name for p in (folder / "started").iterdir()) == ["acme", "initech"]


def test_one_tenants_cache_keys_are_flushed_with_scan_match(redis_url: str) -> None:
    """docs/every-tenant.md's flush: ``SCAN MATCH tenant_key("*")`` finds exactly one tenant's
    keys, whatever the keys hold (``:``, glob characters), not a tenant whose name extends it."""
    import redis  # the module is skipped without it

    client = redis.Redis.from_url(redis_url)
    keys = ["plain", "a:b:c", "glob*[x]?", ""]
    for tenant in ("acme", "acme_eu", "globex"):
        for key in keys:
            client.set(tenant_key(key, tenant=tenant), tenant)
    found = sorted(k.decode() for k in client.scan_iter(match=tenant_key("*", tenant="acme"),
                                                          count=2))
    assert found == sorted(tenant_key(k, tenant="acme") for k in keys)
    client.unlink(*found)
    assert client.dbsize() == 2 * len(keys)
    client.close()
