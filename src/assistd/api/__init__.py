"""HTTP: thin routes (parse → service → serialise), one error path, the OpenAPI document."""
