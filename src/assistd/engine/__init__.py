"""Protocol-free machinery shared by the run executor and ingestion (docs/design.md)."""
