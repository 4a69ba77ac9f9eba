"""The run engine, protocol-free: the lifecycle (the only writer of a run's status), the model-call loop,
the executor and worker, and the leased queue shared with ingestion (docs/run-engine.md)."""
