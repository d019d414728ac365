"""Work of each pipeline stage, as plain functions (no Luigi inside)."""
