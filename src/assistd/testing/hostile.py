"""Hostile documents for tests and benchmarks: decompression bombs and oversized structures.

Each builder returns the file's bytes and the number of bytes it unpacks to (what a parser that
trusts it would inflate). Nothing here is a real document; they are built the way attackers build
them: a repeated XML element deflated ~650:1, a page tree of many pages, a content stream that
inflates ~1000:1.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_TYPE = R.replace("/relationships", "/relationships/officeDocument")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    unpacked: int  # bytes the file inflates to (its XML parts, or its streams)


def _rels(*targets: tuple[str, str, str]) -> str:
    items = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{target}"/>' for i, t, target in targets)
    return f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{REL}">{items}</Relationships>'


def _write_repeated(archive: zipfile.ZipFile, name: str, head: bytes, unit: bytes, size: int, tail: bytes) -> int:
    """A member made of `unit` repeated to ~`size` bytes, written in pieces (never held whole)."""
    block = unit * max(1, _MB // len(unit))
    written = 0
    with archive.open(name, "w", force_zip64=True) as member:
        member.write(head)
        while written < size:
            member.write(block)
            written += len(block)
        member.write(tail)
    return len(head) + written + len(tail)


def docx_bomb(unpacked: int, name: str = "bomb.docx") -> Hostile:
    """A .docx whose document.xml is `unpacked` bytes of empty paragraphs, deflated ~650:1."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("_rels/.rels", _rels(("rId1", DOC_TYPE, "word/document.xml")))
        size = _write_repeated(
            archive,
            "word/document.xml",
            f'<?xml version="1.0"?><w:document xmlns:w="{W}"><w:body>'.encode(),
            b"<w:p/>",
            unpacked,
            b"</w:body></w:document>",
        )
    return Hostile(name, buffer.getvalue(), size)


def pptx_bomb(unpacked: int, name: str = "bomb.pptx") -> Hostile:
    """A real one-slide .pptx (python-pptx's template) whose slide holds a text box of `unpacked` bytes of
    empty paragraphs, deflated ~650:1."""
    import pptx  # the retrieval extra
    from pptx.util import Inches

    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "MARKER"
    template = io.BytesIO()
    presentation.save(template)
    buffer = io.BytesIO()
    size = 0
    with (
        zipfile.ZipFile(template) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
    ):
        for info in source.infolist():
            content = source.read(info)
            if info.filename != "ppt/slides/slide1.xml":
                archive.writestr(info.filename, content)
                continue
            head, tail = content.split(b"<a:p><a:r><a:t>MARKER</a:t></a:r></a:p>")
            size = _write_repeated(archive, info.filename, head, b"<a:p/>", unpacked, tail)
    return Hostile(name, buffer.getvalue(), size)


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of numbered objects (1 is the catalog) with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _page(contents: int) -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R" % contents
        + b" /Resources << /Font << /F1 3 0 R >> >> >>"
    )


def pdf_many_pages(pages: int, name: str = "pages.pdf") -> Hostile:
    """A PDF of `pages` pages that all show the same one-line content stream."""
    text = b"BT /F1 12 Tf 72 720 Td (page) Tj ET"
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        _FONT,
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    objects += [_page(4)] * pages
    return Hostile(name, _pdf(objects), len(text))


def pdf_stream_bomb(unpacked: int, name: str = "stream.pdf") -> Hostile:
    """A one-page PDF whose content stream inflates ~1000:1 to `unpacked` bytes of drawing operators."""
    unit = b"0 0 m 1 1 l S\n"
    block = unit * (_MB // len(unit))
    deflater = zlib.compressobj(9)
    pieces, size = [], 0
    while size < unpacked:
        pieces.append(deflater.compress(block))
        size += len(block)
    pieces.append(deflater.flush())
    stream = b"".join(pieces)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        _FONT,
        _page(5),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    return Hostile(name, _pdf(objects), size)
