"""What parsing one file may use: hostile documents (decompression bombs) end `invalid_file` instead
of taking the server's memory and CPU.

A .docx of 47 KB can unpack to 30 MB of XML (a full DOM of it: 1.7 GB); one of 2.4 MB past 2 GB.
The limits hold for every file: bytes inflated from an archive (declared sizes are checked before
anything is inflated, actual ones while reading), compression ratio, XML elements, PDF pages, and
characters of text extracted.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistd.retrieval.errors import InvalidFile

MIB = 1024 * 1024
RATIO_FLOOR = MIB  # members smaller than this may compress as well as they like


@dataclass(frozen=True)
class ParseLimits:
    max_unpacked_bytes: int = 256 * MIB
    max_compression_ratio: float = 200.0
    max_zip_entries: int = 50_000
    max_xml_elements: int = 10_000_000
    max_text_chars: int = 20_000_000
    max_pdf_pages: int = 10_000
    max_pdf_stream_bytes: int = 8 * MIB


class Budget:
    """One file's running totals against its limits; raises `InvalidFile` at the first one exceeded."""

    def __init__(self, limits: ParseLimits, kind: str) -> None:
        self.limits = limits
        self.kind = kind
        self.unpacked = 0
        self.elements = 0
        self.chars = 0

    def check_member(self, name: str, size: int, compressed: int) -> None:
        """An archive member about to be read: its declared size and compression ratio."""
        if self.unpacked + size > self.limits.max_unpacked_bytes:
            raise InvalidFile(
                f"The {self.kind} unpacks to more than {self.limits.max_unpacked_bytes} bytes "
                f"({name}: {size} bytes), over the parsing limit."
            )
        self.check_ratio(name, size, compressed)

    def check_ratio(self, name: str, size: int, compressed: int) -> None:
        ratio = size / max(compressed, 1)
        if size > RATIO_FLOOR and ratio > self.limits.max_compression_ratio:
            raise InvalidFile(
                f"The {self.kind} looks like a decompression bomb: {name} is compressed {ratio:.0f}:1 "
                f"({compressed} bytes to {size}), over the limit of {self.limits.max_compression_ratio:g}:1."
            )

    def add_unpacked(self, n: int) -> None:
        self.unpacked += n
        if self.unpacked > self.limits.max_unpacked_bytes:
            raise InvalidFile(
                f"The {self.kind} unpacks to more than {self.limits.max_unpacked_bytes} bytes, over the parsing limit."
            )

    def add_elements(self, n: int) -> None:
        self.elements += n
        if self.elements > self.limits.max_xml_elements:
            raise InvalidFile(
                f"The {self.kind} has more than {self.limits.max_xml_elements} XML elements, over the parsing limit."
            )

    def add_text(self, n: int) -> None:
        self.chars += n
        if self.chars > self.limits.max_text_chars:
            raise InvalidFile(
                f"The {self.kind} has more than {self.limits.max_text_chars} characters of text, "
                "over the parsing limit."
            )
