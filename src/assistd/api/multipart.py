"""Streaming multipart/form-data: file parts go straight to the blob store, never whole into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from assistd.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from assistd.storage.blobs import BlobStore, BlobWriter

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32


@dataclass
class UploadedFile:
    filename: str
    blob_key: str
    size: int


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)
    writer: BlobWriter | None = None
    size: int = 0


class _Events:
    """Collects the parser's synchronous callbacks so they can be handled with awaits."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._field = bytearray()
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": lambda: self.items.append(("begin", b"")),
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.items.append(("headers_done", b"")),
            "on_part_data": lambda d, s, e: self.items.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.items.append(("end", b"")),
        }

    def _header_end(self) -> None:
        self.items.append(("header", bytes(self._field) + b"\0" + bytes(self._value)))
        self._field.clear()
        self._value.clear()


async def read_form(request: Request, blobs: BlobStore, max_bytes: int) -> Form:
    """Parse the body; file parts are written to `blobs`. On any error the written blobs are removed."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise UnsupportedMediaType("This endpoint expects a multipart/form-data body.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MAX_FIELD_BYTES:
        raise PayloadTooLarge(f"File uploads are limited to {max_bytes} bytes on this server.")
    events = _Events()
    parser = MultipartParser(options[b"boundary"], events.callbacks())  # type: ignore[arg-type]
    form = Form()
    committed: list[str] = []
    part = _Part()
    try:
        async for chunk in _stream(request):
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequest(f"The multipart body could not be parsed: {exc}") from None
            for kind, data in events.items:
                part = await _handle(kind, data, part, form, blobs, max_bytes, committed)
            events.items.clear()
        parser.finalize()
    except BaseException:
        if part.writer is not None:
            await part.writer.abort()
        for key in committed:
            await blobs.delete(key)
        raise
    return form


async def _stream(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _handle(
    kind: str, data: bytes, part: _Part, form: Form, blobs: BlobStore, max_bytes: int, committed: list[str]
) -> _Part:
    if kind == "begin":
        return _Part()
    if kind == "header":
        name, _, value = data.partition(b"\0")
        part.headers[name.lower()] = value
    elif kind == "headers_done":
        _, opts = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = opts.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in opts:
            part.filename = opts[b"filename"].decode("utf-8", "replace")
            part.writer = blobs.writer()
        elif len(form.fields) >= MAX_FIELDS:
            raise InvalidRequest("Too many form fields.")
    elif kind == "data":
        part.size += len(data)
        if part.writer is not None:
            if part.size > max_bytes:
                raise PayloadTooLarge(f"File uploads are limited to {max_bytes} bytes on this server.")
            await part.writer.write(data)
        else:
            if part.size > MAX_FIELD_BYTES:
                raise InvalidRequest(f"Form field '{part.name}' is too long.", param=part.name)
            part.value += data
    elif kind == "end":
        if part.writer is not None:
            key = await part.writer.commit()
            part.writer = None
            committed.append(key)
            if part.name in form.files:
                raise InvalidRequest(f"Form field '{part.name}' was given twice.", param=part.name)
            form.files[part.name] = UploadedFile(part.filename or "upload", key, part.size)
        else:
            form.fields[part.name] = part.value.decode("utf-8", "replace")
    return part
