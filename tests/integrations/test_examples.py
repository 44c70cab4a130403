"""The example apps, end to end over HTTP: two tenants, same endpoints, different data."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from examples.fastapi_app import app as fastapi_example
from examples.flask_app import app as flask_example
from werkzeug.serving import make_server

from tenantry import TENANT_SCHEMA, TenantBase

ACME = {"tenant": "acme", "notes": fastapi_example.SEED["acme"]}
GLOBEX = {"tenant": "globex", "notes": fastapi_example.SEED["globex"]}


def test_the_examples_declare_their_model_as_the_readme_does() -> None:
    """On TenantBase (README, tenantry init), one model shared by both apps."""
    assert fastapi_example.Note is flask_example.Note
    assert issubclass(fastapi_example.Note, TenantBase)
    assert fastapi_example.Note.__table__.schema == TENANT_SCHEMA


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_fastapi_example(database_url: str, driver: str) -> None:
    async def main() -> None:
        tenancy = fastapi_example.connect(database_url, driver)
        await fastapi_example.provision(tenancy)
        app = fastapi_example.create_app(tenancy)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            assert (await http.get("/notes", headers={"X-Tenant": "acme"})).json() == ACME
            assert (await http.get("/notes", headers={"X-Tenant": "globex"})).json() == GLOBEX
            assert (await http.get("/t/globex/notes")).json() == GLOBEX
            sub = await http.get("http://acme.localhost/notes")
            assert sub.json() == ACME
            assert (await http.get("/whoami", headers={"X-Tenant": "acme"})).json() == {
                "tenant": "acme"
            }
            created = await http.post(
                "/t/acme/notes", json={"text": "second"}, headers={"X-Tenant": "globex"}
            )
            assert created.status_code == 201
            assert created.json()["tenant"] == "acme"  # the path wins: first resolver
            assert (await http.get("/t/acme/notes")).json()["notes"][-1] == "second"
            assert (await http.get("/t/globex/notes")).json() == GLOBEX

            missing = await http.get("/notes")
            assert (missing.status_code, missing.json()) == (
                400,
                {"detail": "no tenant in request"},
            )
            unknown = await http.get("/notes", headers={"X-Tenant": "initech"})
            assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown tenant"})
            bad = await http.get("/notes", headers={"X-Tenant": "Robert'); DROP TABLE x;--"})
            assert bad.status_code == 404
            health = await http.get("/health")
            assert health.json() == {"ok": True, "tenant": None}

            async def fetch(n: int) -> tuple[str, dict[str, object]]:
                name = ("acme", "globex")[n % 2]
                response = await http.get("/notes", headers={"X-Tenant": name})
                return name, response.json()

            results = await asyncio.gather(*(fetch(n) for n in range(60)))
            expected = {
                "acme": {"tenant": "acme", "notes": [*ACME["notes"], "second"]},
                "globex": GLOBEX,
            }
            assert [body for _, body in results] == [expected[name] for name, _ in results]
        await tenancy.dispose()

    asyncio.run(main())


@pytest.fixture
def flask_server(database_url: str) -> Iterator[str]:
    """The Flask example served by a real threaded WSGI server on 127.0.0.1."""
    tenancy = flask_example.connect(database_url)
    flask_example.provision(tenancy)
    server = make_server("127.0.0.1", 0, flask_example.create_app(tenancy), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        tenancy.dispose()


def test_flask_example_over_http(flask_server: str) -> None:
    with httpx.Client(base_url=flask_server) as http:
        assert http.get("/notes", headers={"X-Tenant": "acme"}).json() == ACME
        assert http.get("/notes", headers={"X-Tenant": "globex"}).json() == GLOBEX
        assert http.get("/t/globex/notes").json() == GLOBEX
        port = flask_server.rsplit(":", 1)[1]
        sub = http.get("/notes", headers={"Host": f"acme.localhost:{port}"})
        assert sub.json() == ACME
        created = http.post("/t/acme/notes", json={"text": "second"})
        assert (created.status_code, created.json()["tenant"]) == (201, "acme")
        assert http.get("/t/acme/notes").json()["notes"][-1] == "second"
        assert http.get("/t/globex/notes").json() == GLOBEX

        missing = http.get("/notes")
        assert (missing.status_code, missing.json()) == (400, {"detail": "no tenant in request"})
        unknown = http.get("/notes", headers={"X-Tenant": "initech"})
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown tenant"})
        assert http.get("/health").json() == {"ok": True, "tenant": None}

        def fetch(n: int) -> tuple[str, object]:
            name = ("acme", "globex")[n % 2]
            return name, http.get("/notes", headers={"X-Tenant": name}).json()

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(fetch, range(60)))
        expected = {
            "acme": {"tenant": "acme", "notes": [*ACME["notes"], "second"]},
            "globex": GLOBEX,
        }
        assert [body for _, body in results] == [expected[name] for name, _ in results]


ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("example", ["fastapi_app", "flask_app"])
def test_examples_run_as_documented(database_url: str, example: str) -> None:
    """``TENANTRY_URL=... PORT=... python -m examples.<name>``, as docs/web.md says."""
    port = free_port()
    env = dict(os.environ, TENANTRY_URL=database_url, PORT=str(port))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", f"examples.{example}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base) as http:
            for _ in range(300):
                if process.poll() is not None:
                    break
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert process.poll() is None, process.communicate()[0].decode()
            assert http.get("/notes", headers={"X-Tenant": "acme"}).json() == ACME
            assert http.get("/t/globex/notes").json() == GLOBEX
            assert http.get("/notes").status_code == 400
            assert http.get("/notes", headers={"X-Tenant": "initech"}).status_code == 404
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C, as a user would stop it
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
