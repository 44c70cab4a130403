"""Runnable example applications (see docs/web.md)."""
