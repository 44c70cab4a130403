"""Run the Flask example: ``python -m examples.flask_app``.

Uses ``TENANTRY_URL`` if set, else starts an embedded PostgreSQL (``tenantry[embedded]``).
Listens on 127.0.0.1:5000 (``PORT`` to change).
"""

import os

from .app import connect, create_app, provision


def main() -> None:
    url = os.environ.get("TENANTRY_URL")
    server = None
    if not url:
        from tenantry import embedded

        server = embedded.start()
        url = server.url
        print("Started an embedded PostgreSQL (data is temporary).")
    tenancy = connect(url)
    try:
        provision(tenancy)
        port = int(os.environ.get("PORT", "5000"))
        print(f"Try: curl -H 'X-Tenant: acme' http://127.0.0.1:{port}/notes")
        create_app(tenancy).run(host="127.0.0.1", port=port)
    finally:
        tenancy.dispose()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
