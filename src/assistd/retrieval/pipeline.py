"""Parse → chunk → embed: what ingestion does to one file's bytes (retrieval/ingestion.py stores the result)."""

from __future__ import annotations

import asyncio

from assistd.retrieval.chunking import chunk
from assistd.retrieval.embedding import Embedder
from assistd.retrieval.ingestion import ChunkRecord, IngestError
from assistd.retrieval.limits import ParseLimits
from assistd.retrieval.parsing import FileError, parse


class IngestionPipeline:
    def __init__(self, embedder: Embedder, *, max_bytes: int, limits: ParseLimits | None = None) -> None:
        self.embedder = embedder
        self.max_bytes = max_bytes
        self.limits = limits or ParseLimits()

    async def process(self, filename: str, data: bytes, max_tokens: int, overlap: int) -> list[ChunkRecord]:
        try:
            text = await asyncio.to_thread(parse, filename, data, max_bytes=self.max_bytes, limits=self.limits)
        except FileError as exc:
            raise IngestError(exc.code, exc.message) from None
        pieces = await asyncio.to_thread(chunk, text, max_tokens, overlap)
        vectors = await self.embedder.embed([p.text for p in pieces])
        return [
            ChunkRecord(text=p.text, tokens=p.tokens, embedding=vectors[i].astype("<f4").tobytes())
            for i, p in enumerate(pieces)
        ]
