"""File bytes live in a blob store behind this small interface; a directory by default."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> str: ...
    async def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...
    def read(self, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def size(self, key: str) -> int: ...


def check_key(key: str) -> str:
    """Keys are our own uuid hex; refuse anything path-like before it reaches a path or an object name."""
    if not key.isalnum():
        raise ValueError(f"bad blob key {key!r}")
    return key


class _DirectoryWriter:
    """Writes to a temporary name, renames into place on commit: readers never see half a file."""

    def __init__(self, root: Path) -> None:
        self._key = uuid.uuid4().hex
        self._final = root / self._key[:2] / self._key
        self._tmp = root / "tmp" / f"{self._key}.part"
        self._buffer = bytearray()
        self._tmp.touch()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with open(self._tmp, "ab") as fh:
            fh.write(data)

    async def commit(self) -> str:
        await self._flush()

        def _move() -> None:
            self._final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, self._final)

        await asyncio.to_thread(_move)
        return self._key

    async def abort(self) -> None:
        self._buffer = bytearray()
        await asyncio.to_thread(self._tmp.unlink, True)


class DirectoryBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def writer(self) -> BlobWriter:
        return _DirectoryWriter(self.root)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            while True:
                data = await asyncio.to_thread(fh.read, CHUNK)
                if not data:
                    break
                yield data
        finally:
            fh.close()

    async def size(self, key: str) -> int:
        return (await asyncio.to_thread(os.stat, self._path(key))).st_size

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)
