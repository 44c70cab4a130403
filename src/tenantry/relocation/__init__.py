"""relocation."""
