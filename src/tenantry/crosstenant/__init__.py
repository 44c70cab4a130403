"""crosstenant."""
