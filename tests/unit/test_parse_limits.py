"""retrieval.limits: every parsing limit ends `InvalidFile` naming it; real documents pass the defaults."""

from __future__ import annotations

import io
import random
import resource
import struct
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("docx")
pytest.importorskip("pptx")

import docx  # noqa: E402

from assistd.retrieval.limits import ParseLimits  # noqa: E402
from assistd.retrieval.parsing import InvalidFile, parse  # noqa: E402
from assistd.testing import hostile  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_retrieval_parsing import make_docx, make_pdf, make_pptx  # noqa: E402

NO_RATIO = 1e9  # to reach the limits behind the compression-ratio check


def refused(filename: str, data: bytes, limits: ParseLimits | None = None) -> str:
    with pytest.raises(InvalidFile) as info:
        parse(filename, data, limits=limits)
    return info.value.message


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_compression_ratio() -> None:
    message = refused("bomb.docx", hostile.docx_bomb(30_000_000).data)
    assert "decompression bomb" in message and "word/document.xml" in message
    assert "decompression bomb" in refused("bomb.pptx", hostile.pptx_bomb(5_000_000).data)
    assert "decompression bomb" in refused("bomb.pdf", hostile.pdf_stream_bomb(5_000_000).data)


def test_declared_unpacked_size_is_checked_before_inflating() -> None:
    bomb = hostile.docx_bomb(5_000_000)
    message = refused("bomb.docx", bomb.data, ParseLimits(max_compression_ratio=NO_RATIO, max_unpacked_bytes=4_000_000))
    assert "unpacks to more than 4000000 bytes" in message


def test_a_part_that_lies_about_its_size_is_refused() -> None:
    """The central directory says 1,000 bytes; the data inflates to 5 MB."""
    data = bytearray(hostile.docx_bomb(5_000_000).data)
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(b"word/document.xml"))
    struct.pack_into("<I", data, entry + 24, 1000)  # uncompressed size
    assert "cannot be read" in refused("liar.docx", bytes(data), ParseLimits(max_compression_ratio=NO_RATIO))


def test_xml_elements_stream_in_flat_memory() -> None:
    bomb = hostile.docx_bomb(60_000_000)  # 10 million empty paragraphs
    before, started = peak_rss_mb(), time.perf_counter()
    message = refused("bomb.docx", bomb.data, ParseLimits(max_compression_ratio=NO_RATIO, max_xml_elements=2_000_000))
    assert "more than 2000000 XML elements" in message
    assert peak_rss_mb() - before < 50  # python-docx's DOM of it took gigabytes
    assert time.perf_counter() - started < 20


def test_text_chars() -> None:
    limits = ParseLimits(max_text_chars=20)
    assert "characters of text" in refused("report.docx", make_docx(), limits)
    assert "characters of text" in refused("deck.pptx", make_pptx(), limits)
    assert "characters of text" in refused("report.pdf", make_pdf([["x" * 30]]), limits)
    assert "characters of text" in refused("notes.txt", b"y" * 30, limits)


def test_pdf_stream_size() -> None:
    """Under the ratio limit, a content stream is still refused past its own size limit (pdfium holds
    ~20 bytes per byte of drawing operators)."""
    bomb = hostile.pdf_stream_bomb(10_000_000)
    before = peak_rss_mb()
    message = refused("stream.pdf", bomb.data, ParseLimits(max_compression_ratio=NO_RATIO))
    assert "stream that inflates to more than 8388608 bytes" in message
    assert peak_rss_mb() - before < 50


def test_pdf_pages() -> None:
    assert "3 pages" in refused("three.pdf", make_pdf([["a"], ["b"], ["c"]]), ParseLimits(max_pdf_pages=2))
    assert "50000 pages" in refused("pages.pdf", hostile.pdf_many_pages(50_000).data)


def test_zip_entries() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(2000):
            archive.writestr(f"junk/{i}.xml", "<x/>")
    assert "more than 1000 parts" in refused("many.docx", buffer.getvalue(), ParseLimits(max_zip_entries=1000))


def test_dtd_and_entities_are_refused() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f'<w:document xmlns:w="{hostile.W}"><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body></w:document>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("_rels/.rels", hostile._rels(("rId1", hostile.DOC_TYPE, "word/document.xml")))
        archive.writestr("word/document.xml", laughs)
    assert "DTD" in refused("laughs.docx", buffer.getvalue())


def test_a_long_book_reads_as_python_docx_reads_it() -> None:
    """The streaming reader gives python-docx's text (paragraphs, runs, tables) for a 300-page book."""
    from docx.table import Table

    rng = random.Random(5)
    words = ["whale", "ship", "captain", "sea", "voyage", "harpoon", "deck", "crew", "storm", "ocean"]
    document = docx.Document()
    for chapter in range(30):
        document.add_heading(f"Chapter {chapter}", level=1)
        for _ in range(50):
            paragraph = document.add_paragraph()
            for r in range(4):
                run = paragraph.add_run(" ".join(rng.choice(words) for _ in range(30)) + " ")
                run.bold, run.italic = r == 1, r == 2
        table = document.add_table(rows=2, cols=3)
        for i in range(2):
            for j in range(3):
                table.cell(i, j).text = f"cell {chapter}.{i}.{j}"
    buffer = io.BytesIO()
    document.save(buffer)
    text = parse("book.docx", buffer.getvalue())
    expected = []
    for block in docx.Document(io.BytesIO(buffer.getvalue())).iter_inner_content():
        if isinstance(block, Table):
            expected += [" | ".join(cell.text for cell in row.cells) for row in block.rows]
        else:
            expected.append(block.text)
    assert text == "\n".join(line.rstrip() for line in expected).strip()
