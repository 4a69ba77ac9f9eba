"""Text extraction for file_search: the file types OpenAI accepts, and its two error codes.

`parse()` is synchronous and CPU-bound; call it in a worker thread. Every failure on bad input is an
`UnsupportedFile` or an `InvalidFile`, whose `code` is the vector-store file's `last_error.code`.
"""

from __future__ import annotations

import json
import posixpath
import re
import threading
import zlib
from collections.abc import Callable
from html.parser import HTMLParser

from assistd.retrieval import ooxml
from assistd.retrieval.errors import FileError, InvalidFile, UnsupportedFile
from assistd.retrieval.limits import Budget, ParseLimits

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_EXTENSIONS",
    "FileError",
    "InvalidFile",
    "ParseLimits",
    "UnsupportedFile",
    "parse",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # OpenAI's per-file limit

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

_PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe


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


def parse(
    filename: str,
    data: bytes,
    content_type: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: ParseLimits | None = None,
) -> str:
    """The text of a file, ready to chunk. Raises `UnsupportedFile` or `InvalidFile`, nothing else.

    The type comes from the filename's extension; `content_type` is used only when there is none.
    `limits` bound what parsing may use (limits.py): a file over one is `InvalidFile`.
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
    budget = Budget(limits or ParseLimits(), _KINDS.get(ext, "file"))
    try:
        text = _PARSERS.get(ext, _parse_text)(data, budget)
    except FileError:
        raise
    except MemoryError:
        raise InvalidFile("The file is too large to parse.") from None
    except Exception as exc:  # third-party parsers raise anything on broken input
        raise InvalidFile(f"The file could not be parsed as {ext}: {type(exc).__name__}.") from exc
    budget.chars = 0
    budget.add_text(len(text))  # the same limit for every type, plain text included
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


def _parse_text(data: bytes, budget: Budget) -> str:
    return decode_text(data)


def _parse_json(data: bytes, budget: Budget) -> str:
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


def _parse_html(data: bytes, budget: Budget) -> str:
    parser = _HTMLText()
    parser.feed(decode_text(data))
    parser.close()
    body = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    title = " ".join("".join(parser.title).split())
    if not body.strip() and title:  # only a title: better than nothing
        return title
    return body


# --- pdf -----------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, budget: Budget) -> str:
    import pypdfium2 as pdfium

    if b"%PDF" not in data[:1024]:
        raise InvalidFile("The file is not a PDF.")
    check_pdf_streams(data, budget)
    pages: list[str] = []
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise InvalidFile("The PDF is encrypted.") from None
            raise InvalidFile("The PDF could not be opened (broken or not a PDF).") from None
        try:
            count = len(pdf)
            if count > budget.limits.max_pdf_pages:
                raise InvalidFile(
                    f"The PDF has {count} pages, over the parsing limit of {budget.limits.max_pdf_pages}."
                )
            for index in range(count):
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        text = str(textpage.get_text_bounded())
                    finally:
                        textpage.close()
                finally:
                    page.close()
                budget.add_text(len(text))
                pages.append(text)
        finally:
            pdf.close()
    return "\n\n".join(pages)


_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_NOT_PARSED = re.compile(rb"/Subtype\s*/Image\b|/Length1\b|/Subtype\s*/(?:Type1C|CIDFontType0C|OpenType)\b")
_PDF_READ = 256 * 1024


def check_pdf_streams(data: bytes, budget: Budget) -> None:
    """Inflate the PDF's Flate streams in pieces, keeping nothing, before pdfium inflates them whole: a
    content stream that inflates 1000:1, or to more than `max_pdf_stream_bytes` (pdfium holds ~18 bytes
    per byte of drawing operators), is refused here. Images and font programs are left out: text
    extraction does not parse them as content, and a plain background compresses very well."""
    for match in _STREAM.finditer(data):
        head = data[max(0, match.start() - 2048) : match.start()]
        dictionary = head[head.rfind(b"obj") + 1 :]
        if b"/FlateDecode" not in dictionary or _NOT_PARSED.search(dictionary):
            continue
        inflater = zlib.decompressobj()
        start = position = match.end()
        inflated = 0
        try:
            pending = b""
            while not inflater.eof:
                if not pending:
                    if position >= len(data):
                        break
                    pending = data[position : position + _PDF_READ]
                    position += len(pending)
                out = inflater.decompress(pending, _PDF_READ)
                pending = inflater.unconsumed_tail
                inflated += len(out)
                budget.add_unpacked(len(out))
                budget.check_ratio("a stream", inflated, position - start - len(pending))
                if inflated > budget.limits.max_pdf_stream_bytes:
                    raise InvalidFile(
                        f"The PDF has a stream that inflates to more than {budget.limits.max_pdf_stream_bytes} "
                        "bytes, over the parsing limit."
                    )
        except zlib.error:
            continue  # broken, or not plain Flate data: pdfium decides what it makes of it


# --- docx / pptx ---------------------------------------------------------------------------------


def _parse_docx(data: bytes, budget: Budget) -> str:
    return ooxml.docx_text(data, budget)


def _parse_pptx(data: bytes, budget: Budget) -> str:
    return ooxml.pptx_text(data, budget)


_KINDS = {".docx": "DOCX", ".pptx": "PPTX", ".pdf": "PDF"}
_PARSERS: dict[str, Callable[[bytes, Budget], str]] = {
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
