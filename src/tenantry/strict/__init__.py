"""Strict mode: a PostgreSQL role per tenant, switched to or logged in as."""
