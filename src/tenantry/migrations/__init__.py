"""Alembic streams, one tenant's migration, and the fleet run with its executors."""
