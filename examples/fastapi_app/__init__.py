"""FastAPI + tenantry example: ``python -m examples.fastapi_app`` (see docs/web.md)."""
