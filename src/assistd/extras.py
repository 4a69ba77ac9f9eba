"""The optional parts of assistd and the pip extra that brings each (pyproject.toml).

The server starts with any subset installed (`app.py` wires what is present); a capability whose
extra is missing answers an error naming it (`missing_message`).
"""

from __future__ import annotations

import importlib.util
from typing import Literal

Extra = Literal["local", "retrieval", "sandbox", "postgres", "s3"]

# The top-level modules each extra installs (what the code imports).
MODULES: dict[Extra, tuple[str, ...]] = {
    "local": ("llama_cpp",),
    "retrieval": ("numpy", "onnxruntime", "tokenizers", "pypdfium2", "docx", "pptx"),
    "sandbox": ("jupyter_client", "zmq", "pyseccomp"),
    "postgres": ("asyncpg",),
    "s3": ("obstore",),
}

WHAT: dict[Extra, str] = {
    "local": "The bundled local model",
    "retrieval": "File search (vector store ingestion and search)",
    "sandbox": "code_interpreter",
    "postgres": "PostgreSQL",
    "s3": "Object storage (ASSISTD_BLOB_STORE=s3)",
}

DOCS: dict[Extra, str] = {
    "local": "docs/local-model.md",
    "retrieval": "docs/file-search.md",
    "sandbox": "docs/code-interpreter.md",
    "postgres": "docs/deployment.md",
    "s3": "docs/deployment.md",
}


def missing(extra: Extra) -> list[str]:
    """The extra's modules that cannot be found (without importing anything)."""
    return [name for name in MODULES[extra] if importlib.util.find_spec(name) is None]


def belongs_to(extra: Extra, exc: ImportError) -> bool:
    """Whether an ImportError is one of the extra's modules missing (not a bug elsewhere)."""
    name = (exc.name or "").split(".")[0]
    return name in MODULES[extra]


def missing_message(extra: Extra, module: str | None = None) -> str:
    """What a client (and the operator) reads when a capability's extra is not installed."""
    which = f" ({module} is missing)" if module else ""
    return (
        f"{WHAT[extra]} needs the '{extra}' extra, which is not installed on this server{which}: "
        f"pip install 'assistd[{extra}]' ({DOCS[extra]})."
    )
