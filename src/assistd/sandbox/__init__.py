"""code_interpreter's sandbox: per-thread Python kernels in bubblewrap (docs/code-interpreter.md)."""
