"""Test helpers shipped with assistd, for our own suite and for users' tests."""
