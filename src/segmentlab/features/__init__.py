"""Customer feature sets: each maps cleaned invoice lines to one row per customer."""
