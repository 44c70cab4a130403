"""Run the FastAPI example: ``python -m examples.fastapi_app``.

Uses ``TENANTRY_URL`` if set, else starts an embedded PostgreSQL (``tenantry[embedded]``).
Listens on 127.0.0.1:8000 (``PORT`` to change).
"""

import asyncio
import os

import uvicorn

from .app import connect, create_app, provision


async def _provision(url: str) -> None:
    tenancy = connect(url)
    try:
        await provision(tenancy)
    finally:
        await tenancy.dispose()


def main() -> None:
    url = os.environ.get("TENANTRY_URL")
    server = None
    if not url:
        from tenantry import embedded

        server = embedded.start()
        url = server.url
        print("Started an embedded PostgreSQL (data is temporary).")
    try:
        asyncio.run(_provision(url))
        port = int(os.environ.get("PORT", "8000"))
        print(f"Try: curl -H 'X-Tenant: acme' http://127.0.0.1:{port}/notes")
        uvicorn.run(create_app(connect(url)), host="127.0.0.1", port=port)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
