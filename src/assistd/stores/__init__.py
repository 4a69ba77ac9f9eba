"""The SQL of assistd: one module per aggregate, returning frozen records (stores/common.py)."""
