"""Flask + tenantry example: ``python -m examples.flask_app`` (see docs/web.md)."""
