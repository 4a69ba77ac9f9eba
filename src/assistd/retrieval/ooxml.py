"""Text of .docx and .pptx files, read as a stream: never a DOM of the whole document.

The archive is checked before anything is inflated (entry count, each part's declared size and
compression ratio), then each XML part is inflated in pieces and fed to expat, which keeps no tree:
memory stays flat whatever the size of the document, and the parse stops at the first limit
exceeded (bytes inflated, XML elements, characters of text; see limits.py). DTDs are refused
(OOXML never has one), so entity expansion cannot happen.

What is extracted matches what python-docx and python-pptx give: docx body paragraphs and tables in
document order (cells " | "-joined, a merged cell once, nested tables inside their cell); pptx slides
in presentation order with their text frames, tables, group shapes and speaker notes.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

from assistd.retrieval.errors import InvalidFile
from assistd.retrieval.limits import Budget

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Office, and encrypted OOXML
_READ = 64 * 1024
_CENTRAL_ENTRY = 200  # bytes per central-directory entry OOXML needs at most (46 + a name)

# Transitional and strict namespaces of the vocabularies read here, by the prefix used below.
_NAMESPACES = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main": "w",
    "http://purl.oclc.org/ooxml/wordprocessingml/main": "w",
    "http://schemas.openxmlformats.org/drawingml/2006/main": "a",
    "http://purl.oclc.org/ooxml/drawingml/main": "a",
    "http://schemas.openxmlformats.org/presentationml/2006/main": "p",
    "http://purl.oclc.org/ooxml/presentationml/main": "p",
    "http://schemas.openxmlformats.org/markup-compatibility/2006": "mc",
    "http://schemas.openxmlformats.org/package/2006/relationships": "rel",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships": "r",
    "http://purl.oclc.org/ooxml/officeDocument/relationships": "r",
}
_OFFICE_DOCUMENT = "/officeDocument"
_NOTES_SLIDE = "/notesSlide"


_SHORT: dict[str, str] = {}


def _short(name: str) -> str:
    """expat's "namespace local" name as "w:p" (unknown namespaces become "?:local")."""
    short = _SHORT.get(name)
    if short is None:
        uri, _, local = name.rpartition(" ")
        short = f"{_NAMESPACES.get(uri, '?')}:{local}" if uri else local
        if len(_SHORT) < 4096:  # names come from the file: a hostile one must not grow this without end
            _SHORT[name] = short
    return short


class _Handler:
    """Receives the events of one XML part. `skip` > 0 inside subtrees whose text is not wanted."""

    skip_tags: frozenset[str] = frozenset({"mc:Fallback"})  # AlternateContent's copy of mc:Choice

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.root: str | None = None
        self.skip = 0
        self.elements = 0
        self.max_elements = budget.limits.max_xml_elements - budget.elements

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > self.max_elements:
            self.budget.add_elements(self.elements)  # raises
        tag = _short(name)
        if self.root is None:
            self.root = tag
        if self.skip:
            self.skip += 1
        elif tag in self.skip_tags:
            self.skip = 1
        else:
            self.open(tag, attrs)

    def end(self, name: str) -> None:
        if self.skip:
            self.skip -= 1
        else:
            self.close(_short(name))

    def open(self, tag: str, attrs: dict[str, str]) -> None:
        pass

    def close(self, tag: str) -> None:
        pass

    def text(self, data: str) -> None:
        pass


class _Package:
    """An OOXML zip, checked before anything in it is inflated."""

    def __init__(self, data: bytes, kind: str, budget: Budget) -> None:
        self.kind = kind
        self.budget = budget
        if data.startswith(_OLE_MAGIC):
            raise InvalidFile(f"The {kind} is encrypted, or a legacy Office file renamed.")
        self._check_directory(data)
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise InvalidFile(f"The {kind} is broken (not a zip archive).") from None
        self.names = {info.filename for info in self.archive.infolist()}

    def _check_directory(self, data: bytes) -> None:
        """The entry count and directory size from the end record, before zipfile lists every entry."""
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
        if end < 0 or len(data) < end + 22:
            raise InvalidFile(f"The {self.kind} is broken (not a zip archive).")
        entries, directory_size = struct.unpack("<xxxxxxxxxxHI", data[end : end + 16])
        locator = data.rfind(b"PK\x06\x07", max(0, end - 20), end)
        if locator >= 0:  # zip64: the real figures are in the zip64 end record
            (offset,) = struct.unpack("<Q", data[locator + 8 : locator + 16])
            if data[offset : offset + 4] == b"PK\x06\x06" and len(data) >= offset + 48:
                entries, directory_size = struct.unpack("<QQ", data[offset + 32 : offset + 48])
        limit = self.budget.limits.max_zip_entries
        if entries > limit or directory_size > limit * _CENTRAL_ENTRY:
            raise InvalidFile(f"The {self.kind} has more than {limit} parts, over the parsing limit.")

    def has(self, name: str) -> bool:
        return name in self.names

    def parse(self, name: str, handler: _Handler) -> None:
        """Inflate one part in pieces and feed it to `handler`, within the file's budget."""
        info = self.archive.getinfo(name)
        self.budget.check_member(name, info.file_size, info.compress_size)
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = handler.start
        parser.EndElementHandler = handler.end
        parser.CharacterDataHandler = handler.text
        parser.StartDoctypeDeclHandler = self._refuse_dtd
        parser.EntityDeclHandler = self._refuse_dtd
        parser.buffer_text = True
        read = 0
        try:
            with self.archive.open(info) as member:
                while chunk := member.read(_READ):
                    read += len(chunk)
                    self.budget.add_unpacked(len(chunk))
                    self.budget.check_ratio(name, read, info.compress_size)
                    parser.Parse(chunk, False)
                parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise InvalidFile(f"The {self.kind} is broken: {name} is not well-formed XML ({exc}).") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise InvalidFile(f"The {self.kind} is broken: {name} cannot be read ({type(exc).__name__}).") from None
        self.budget.add_elements(handler.elements)

    def _refuse_dtd(self, *args: Any) -> None:
        raise InvalidFile(f"The {self.kind} declares a DTD, which Office documents never do.")

    def relationships(self, part: str) -> list[tuple[str, str, str]]:
        """(id, type, target part) of `part`'s internal relationships ("" for the package's own)."""
        folder, base = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", f"{base}.rels")
        if not self.has(rels):
            return []
        handler = _Relationships(self.budget)
        self.parse(rels, handler)
        out = []
        for rel_id, rel_type, target in handler.found:
            resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            out.append((rel_id, rel_type, posixpath.normpath(resolved)))
        return out

    def main_part(self, root: str) -> str:
        """The package's main document, checked to be of the kind expected (a pptx is no docx)."""
        for _, rel_type, target in self.relationships(""):
            if rel_type.endswith(_OFFICE_DOCUMENT) and self.has(target):
                return target
        raise InvalidFile(f"The file is not a {self.kind} (no {root} part).")


class _Relationships(_Handler):
    def __init__(self, budget: Budget) -> None:
        super().__init__(budget)
        self.found: list[tuple[str, str, str]] = []

    def open(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "rel:Relationship" and attrs.get("TargetMode") != "External":
            self.found.append((attrs.get("Id", ""), attrs.get("Type", ""), attrs.get("Target", "")))


def _row_text(cells: list[str]) -> str:
    return " | ".join(c for c in cells if c)


def _add_block(blocks: list[str], text: str) -> None:
    """Append a line; blank lines in a row are kept as one, as the text is tidied to anyway (millions of
    empty paragraphs must not become millions of list entries)."""
    if text.strip():
        blocks.append(text)
    elif not blocks or blocks[-1]:
        blocks.append("")


# --- docx ----------------------------------------------------------------------------------------


class _WordBody(_Handler):
    """w:document → blocks of text: each body paragraph, and each table row (nested tables in cells)."""

    skip_tags = frozenset({"mc:Fallback", "w:txbxContent"})  # text boxes: python-docx leaves them out too
    _RUN_CHARS = {"w:tab": "\t", "w:ptab": "\t", "w:br": "\n", "w:cr": "\n", "w:noBreakHyphen": "-"}

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget)
        self.blocks: list[list[str]] = [[]]  # the body's blocks, then each open cell's
        self.rows: list[list[str]] = []  # each open table's current row: its cells' text
        self.paragraph: list[str] | None = None
        self.in_text = False
        self.chars = 0
        self.max_chars = budget.limits.max_text_chars - budget.chars

    def open(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "w:t":
            self.in_text = True
        elif tag == "w:p":
            self.paragraph = []
        elif tag in self._RUN_CHARS:
            if self.paragraph is not None:
                self.paragraph.append(self._RUN_CHARS[tag])
        elif tag == "w:tr":
            self.rows.append([])
        elif tag == "w:tc":
            self.blocks.append([])

    def close(self, tag: str) -> None:
        if tag == "w:t":
            self.in_text = False
        elif tag == "w:p":
            if self.paragraph is not None:
                _add_block(self.blocks[-1], "".join(self.paragraph))
            self.paragraph = None
        elif tag == "w:tc" and len(self.blocks) > 1:
            cell = " ".join(b.strip() for b in self.blocks.pop() if b.strip())
            if self.rows:
                self.rows[-1].append(cell)
        elif tag == "w:tr" and self.rows:
            line = _row_text(self.rows.pop())
            if line:
                _add_block(self.blocks[-1], line)

    def text(self, data: str) -> None:
        if self.in_text and not self.skip and self.paragraph is not None:
            self.chars += len(data)
            if self.chars > self.max_chars:
                self.budget.add_text(self.chars)  # raises
            self.paragraph.append(data)


def docx_text(data: bytes, budget: Budget) -> str:
    package = _Package(data, "DOCX", budget)
    body = _WordBody(budget)
    package.parse(package.main_part("word/document.xml"), body)
    if body.root != "w:document":
        raise InvalidFile("The file is not a DOCX (its main part is not a Word document).")
    budget.add_text(body.chars)
    return "\n".join(body.blocks[0])


# --- pptx ----------------------------------------------------------------------------------------


class _SlideIds(_Handler):
    """p:presentation → the relationship ids of its slides, in presentation order."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget)
        self.ids: list[str] = []

    def open(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "p:sldId":
            for name, value in attrs.items():
                if _short(name) == "r:id":
                    self.ids.append(value)


class _SlideText(_Handler):
    """A slide (or notes slide) → its shapes' text: text frames, table rows, in document order.

    With `body_only` (a notes slide), only the body placeholder's text: the speaker notes.
    """

    def __init__(self, budget: Budget, *, body_only: bool = False) -> None:
        super().__init__(budget)
        self.body_only = body_only
        self.parts: list[str] = []
        self.frame: list[str] | None = None  # paragraphs of the open text frame
        self.paragraph: list[str] | None = None
        self.row: list[str] | None = None
        self.in_cell = False
        self.in_text = False
        self.placeholder: str | None = None  # the type of the open shape's placeholder
        self.chars = 0
        self.max_chars = budget.limits.max_text_chars - budget.chars

    def open(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "a:t":
            self.in_text = True
        elif tag == "a:p":
            self.paragraph = []
        elif tag == "a:br":
            if self.paragraph is not None:
                self.paragraph.append("\n")
        elif tag in ("p:txBody", "a:txBody"):
            self.frame = []
        elif tag == "p:sp":
            self.placeholder = None
        elif tag == "p:ph":
            self.placeholder = attrs.get("type", "obj")
        elif tag == "a:tr":
            self.row = []
        elif tag == "a:tc":
            self.in_cell = True

    def close(self, tag: str) -> None:
        if tag == "a:t":
            self.in_text = False
        elif tag == "a:p":
            if self.frame is not None and self.paragraph is not None:
                _add_block(self.frame, "".join(self.paragraph))
            self.paragraph = None
        elif tag in ("p:txBody", "a:txBody") and self.frame is not None:
            text = "\n".join(self.frame)
            self.frame = None
            if self.in_cell:
                if self.row is not None:
                    self.row.append(text.strip())
            elif text.strip() and (not self.body_only or self.placeholder == "body"):
                self.parts.append(text)
        elif tag == "a:tc":
            self.in_cell = False
        elif tag == "a:tr" and self.row is not None:
            line = _row_text(self.row)
            self.row = None
            if line and not self.body_only:
                self.parts.append(line)

    def text(self, data: str) -> None:
        if self.in_text and not self.skip and self.paragraph is not None:
            self.chars += len(data)
            if self.chars > self.max_chars:
                self.budget.add_text(self.chars)  # raises
            self.paragraph.append(data)


def _texts_of(package: _Package, part: str, make: Callable[[Budget], _SlideText]) -> list[str]:
    handler = make(package.budget)
    package.parse(part, handler)
    package.budget.add_text(handler.chars)
    return handler.parts


def pptx_text(data: bytes, budget: Budget) -> str:
    package = _Package(data, "PPTX", budget)
    presentation = package.main_part("ppt/presentation.xml")
    order = _SlideIds(budget)
    package.parse(presentation, order)
    if order.root != "p:presentation":
        raise InvalidFile("The file is not a PPTX (its main part is not a presentation).")
    targets = {rel_id: target for rel_id, rel_type, target in package.relationships(presentation)}
    slides: list[str] = []
    for rel_id in order.ids:
        slide = targets.get(rel_id)
        if slide is None or not package.has(slide):
            continue
        parts = _texts_of(package, slide, _SlideText)
        for _, rel_type, target in package.relationships(slide):
            if rel_type.endswith(_NOTES_SLIDE) and package.has(target):
                parts += _texts_of(package, target, lambda b: _SlideText(b, body_only=True))
        slides.append("\n".join(parts))
    return "\n\n".join(s for s in slides if s)
