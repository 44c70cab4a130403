"""Making, filling, renaming and dropping tenant storage."""
