"""Bringing data in and taking it out: `assistd import` and `assistd export` (docs/import-export.md).

`bundle.py` reads an `assistants-thread-export/v1` folder or loose API objects, `convert.py` turns each
wire object into the record assistd stores (keeping its id and times) or refuses it, `importer.py`
writes them per thread, all or nothing, and `exporter.py` writes the same layout back out.
"""
