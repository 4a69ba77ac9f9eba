"""Stores: the SQL behind each kind of object, one module per table group."""
