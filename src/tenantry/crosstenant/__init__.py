"""Queries across many tenants."""
