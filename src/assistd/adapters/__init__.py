"""The protocols a run is shown in, over the engine: Assistants today (assistants*.py), Responses in Step 12."""
