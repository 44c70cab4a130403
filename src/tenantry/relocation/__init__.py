"""Moving tenants between servers and databases, and finishing interrupted operations."""
