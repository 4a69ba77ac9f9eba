"""Runs: the state machine, the executor, the worker that claims queued runs, expiry and recovery."""
