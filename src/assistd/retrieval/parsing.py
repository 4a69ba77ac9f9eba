"""Text extraction for file_search: the file types OpenAI accepts, and its two error codes.

`parse()` is synchronous and CPU-bound; call it in a worker thread. Every failure on bad input is an
`UnsupportedFile` or an `InvalidFile`, whose `code` is the vector-store file's `last_error.code`.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_EXTENSIONS",
    "FileError",
    "InvalidFile",
    "UnsupportedFile",
    "parse",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # OpenAI's per-file limit
MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024  # docx/pptx: refuse zip bombs before a library inflates them

# Source and plain-text types: decoded as utf-8 / utf-16 / ascii, as the spec requires of text/*.
TEXT_EXTENSIONS = frozenset(
    {".c", ".cpp", ".cs", ".css", ".go", ".java", ".js", ".md", ".php", ".py", ".rb", ".sh", ".tex", ".ts", ".txt"}
)
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | {".doc", ".docx", ".html", ".json", ".pdf", ".pptx"}

# For a filename without a known extension. `.doc` is listed (so it is named in the error), never parsed.
_CONTENT_TYPES: dict[str, str] = {
    "text/x-c": ".c",
    "text/x-c++": ".cpp",
    "text/x-csharp": ".cs",
    "text/css": ".css",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "text/x-golang": ".go",
    "text/html": ".html",
    "text/x-java": ".java",
    "text/javascript": ".js",
    "application/javascript": ".js",
    "application/json": ".json",
    "text/markdown": ".md",
    "application/pdf": ".pdf",
    "text/x-php": ".php",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "text/x-python": ".py",
    "text/x-script.python": ".py",
    "text/x-ruby": ".rb",
    "application/x-sh": ".sh",
    "text/x-sh": ".sh",
    "text/x-tex": ".tex",
    "application/typescript": ".ts",
    "text/plain": ".txt",
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Office, and encrypted OOXML
_PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe


class FileError(Exception):
    """A file that cannot be indexed. `code` and `message` fill the vector-store file's `last_error`."""

    code = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFile(FileError):
    code = "unsupported_file"


class InvalidFile(FileError):
    code = "invalid_file"


def file_extension(filename: str, content_type: str | None = None) -> str:
    """The type `parse` treats the file as: its lower-cased extension, else one from the content type."""
    ext = posixpath.splitext(filename.replace("\\", "/").rsplit("/", 1)[-1])[1].lower()
    if ext in SUPPORTED_EXTENSIONS:
        return ext
    if content_type:
        mapped = _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if mapped is not None and not ext:
            return mapped
    return ext


def parse(filename: str, data: bytes, content_type: str | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of a file, ready to chunk. Raises `UnsupportedFile` or `InvalidFile`, nothing else.

    The type comes from the filename's extension; `content_type` is used only when there is none.
    """
    ext = file_extension(filename, content_type)
    if ext not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFile(f"Files with extension [{ext or 'none'}] are not supported for file_search.")
    if ext == ".doc":
        raise UnsupportedFile("Legacy Word documents (.doc) are not supported; save the file as .docx.")
    if len(data) > max_bytes:
        raise InvalidFile(f"The file is {len(data)} bytes, over the limit of {max_bytes} bytes.")
    if not data.strip():
        raise InvalidFile("The file is empty.")
    try:
        text = _PARSERS.get(ext, _parse_text)(data)
    except FileError:
        raise
    except MemoryError:
        raise InvalidFile("The file is too large to parse.") from None
    except Exception as exc:  # third-party parsers raise anything on broken input
        raise InvalidFile(f"The file could not be parsed as {ext}: {type(exc).__name__}.") from exc
    text = _tidy(text)
    if not text:
        raise InvalidFile("The file contains no extractable text.")
    return text


# --- plain text ----------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """utf-8 (with or without BOM), utf-16 (BOM, or BOM-less with NUL-byte evidence) or ascii; else unsupported."""
    text: str | None = None
    if data.startswith(b"\xef\xbb\xbf"):
        text = _try_decode(data[3:], "utf-8")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")) and not data.startswith(b"\xff\xfe\x00\x00"):
        text = _try_decode(data, "utf-16")
    else:
        # NUL bytes are valid utf-8 but never in text: with many at every other byte, it is BOM-less utf-16.
        if b"\x00" in data and len(data) >= 4 and len(data) % 2 == 0:
            even_nuls, odd_nuls = data[0::2].count(0), data[1::2].count(0)
            half = len(data) // 2
            if odd_nuls > half * 0.3 and even_nuls < half * 0.05:
                text = _try_decode(data, "utf-16-le")
            elif even_nuls > half * 0.3 and odd_nuls < half * 0.05:
                text = _try_decode(data, "utf-16-be")
        if text is None:
            text = _try_decode(data, "utf-8")
    if text is None:
        raise UnsupportedFile("Text files must be utf-8, utf-16 or ascii encoded.")
    if _looks_binary(text):
        raise UnsupportedFile("The file looks binary, not text.")
    return text


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:65536]
    return len(_CONTROL.findall(sample)) > max(8, len(sample) // 100)


def _parse_text(data: bytes) -> str:
    return decode_text(data)


def _parse_json(data: bytes) -> str:
    text = decode_text(data)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text  # not valid JSON: index what is there, as text


# --- html ----------------------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "object", "iframe"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
        "title", "tr", "ul",
    }
)  # fmt: skip
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP_TAGS and tag not in _VOID_TAGS:
            self.skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip_depth:
            self.parts.append(data)


def _parse_html(data: bytes) -> str:
    parser = _HTMLText()
    parser.feed(decode_text(data))
    parser.close()
    body = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    title = " ".join("".join(parser.title).split())
    if not body.strip() and title:  # only a title: better than nothing
        return title
    return body


# --- pdf -----------------------------------------------------------------------------------------


def _parse_pdf(data: bytes) -> str:
    import pypdfium2 as pdfium

    if b"%PDF" not in data[:1024]:
        raise InvalidFile("The file is not a PDF.")
    pages: list[str] = []
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise InvalidFile("The PDF is encrypted.") from None
            raise InvalidFile("The PDF could not be opened (broken or not a PDF).") from None
        try:
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        pages.append(str(textpage.get_text_bounded()))
                    finally:
                        textpage.close()
                finally:
                    page.close()
        finally:
            pdf.close()
    return "\n\n".join(pages)


# --- docx / pptx ---------------------------------------------------------------------------------


def _open_ooxml(data: bytes, kind: str) -> io.BytesIO:
    if data.startswith(_OLE_MAGIC):
        raise InvalidFile(f"The {kind} is encrypted, or a legacy Office file renamed.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise InvalidFile(f"The {kind} expands to more than {MAX_UNZIPPED_BYTES} bytes.")
    except zipfile.BadZipFile:
        raise InvalidFile(f"The {kind} is broken (not a zip archive).") from None
    return io.BytesIO(data)


def _row_text(cells: list[str]) -> str:
    return " | ".join(c for c in cells if c)


def _docx_blocks(container: Any) -> Iterator[str]:
    """Paragraphs and tables in document order; nested tables included. `container` has iter_inner_content()."""
    from docx.table import Table

    for block in container.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                seen: set[int] = set()
                cells: list[str] = []
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell repeats across the columns it spans
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(t.strip() for t in _docx_blocks(cell) if t.strip()))
                line = _row_text(cells)
                if line:
                    yield line
        else:
            yield str(block.text)


def _parse_docx(data: bytes) -> str:
    import docx

    document = docx.Document(_open_ooxml(data, "DOCX"))
    return "\n".join(_docx_blocks(document))


def _pptx_shape_texts(shapes: Any) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _pptx_shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                line = _row_text([cell.text_frame.text.strip() for cell in row.cells])
                if line:
                    yield line
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield str(shape.text_frame.text)


def _parse_pptx(data: bytes) -> str:
    import pptx

    presentation = pptx.Presentation(_open_ooxml(data, "PPTX"))
    slides: list[str] = []
    for slide in presentation.slides:
        parts = [t for t in _pptx_shape_texts(slide.shapes) if t.strip()]
        if slide.has_notes_slide:
            notes_frame = slide.notes_slide.notes_text_frame
            if notes_frame is not None and notes_frame.text.strip():
                parts.append(str(notes_frame.text))
        slides.append("\n".join(parts))
    return "\n\n".join(s for s in slides if s)


_PARSERS: dict[str, Callable[[bytes], str]] = {
    ".docx": _parse_docx,
    ".html": _parse_html,
    ".json": _parse_json,
    ".pdf": _parse_pdf,
    ".pptx": _parse_pptx,
}


# --- normalisation -------------------------------------------------------------------------------


def _tidy(text: str) -> str:
    """One newline convention, no NULs or trailing spaces, at most one blank line in a row."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates (from broken UTF-16) become "?"
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\ufeff", "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
