"""retrieval.parsing: text from each supported type, and only UnsupportedFile / InvalidFile on bad input."""

from __future__ import annotations

import io
import json
import random
import time
import zipfile

import pytest

pytest.importorskip("pypdfium2")
pytest.importorskip("docx")
pytest.importorskip("pptx")

import docx  # noqa: E402
import pptx  # noqa: E402
from pptx.util import Inches  # noqa: E402

from assistd.retrieval.chunking import chunk  # noqa: E402
from assistd.retrieval.parsing import (  # noqa: E402
    SUPPORTED_EXTENSIONS,
    FileError,
    InvalidFile,
    UnsupportedFile,
    parse,
)

# --- fixture builders --------------------------------------------------------------------------------


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], *, encrypt: bool = False) -> bytes:
    """A small valid PDF (Helvetica text, one line per string), with a correct xref table.

    With `encrypt`, the trailer names a Standard security handler (RC4, R2) whose /U entry no empty
    password matches: the document needs a user password, as a password-protected PDF does.
    """
    objects: list[bytes] = []
    page_ids = []
    font_id = 3
    next_id = 4
    page_objs: list[tuple[int, bytes]] = []
    for lines in pages:
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append(f"({_pdf_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        content_id, page_id = next_id, next_id + 1
        next_id += 2
        page_objs.append((content_id, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"))
        page_objs.append(
            (
                page_id,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content_id, font_id),
            )
        )
        page_ids.append(page_id)
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(page_ids),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    numbered = [(i + 1, body) for i, body in enumerate(objects)] + page_objs
    encrypt_ref = b""
    if encrypt:
        encrypt_id = next_id
        numbered.append(
            (
                encrypt_id,
                b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <"
                + b"11" * 32
                + b"> /U <"
                + b"22" * 32
                + b"> >>",
            )
        )
        encrypt_ref = (
            b" /Encrypt %d 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]"
            % (encrypt_id)
        )
    numbered.sort()
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in numbered:
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    size = len(numbered) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R" % size + encrypt_ref + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew by twelve percent in the third quarter.")
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([["Region", "Sales", "Growth"], ["Europe", "4.2M", "9%"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = document.add_table(rows=1, cols=2)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "Merged cell appears once"
    document.add_paragraph("Closing paragraph after the tables.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Roadmap 2027"
    slide.placeholders[1].text_frame.text = "Ship the vector store"
    slide.notes_slide.notes_text_frame.text = "Speaker note: mention the hybrid search"
    second = presentation.slides.add_slide(presentation.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    shape = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    for r, row in enumerate([["Metric", "Value"], ["Latency", "18 ms"]]):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    box = second.shapes.add_textbox(Inches(1), Inches(4), Inches(4), Inches(1))
    box.text_frame.text = "A free text box"
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


# --- extraction --------------------------------------------------------------------------------------


def test_pdf_text_in_page_order() -> None:
    data = make_pdf([["Hello from page one", "Second line (with parens)"], ["Page two says goodbye"]])
    text = parse("report.pdf", data)
    assert "Hello from page one" in text
    assert "Second line (with parens)" in text
    assert text.index("page one") < text.index("Page two")
    assert "\r" not in text


def test_docx_paragraphs_and_tables_in_order() -> None:
    text = parse("report.docx", make_docx())
    assert text.splitlines()[0] == "Quarterly report"
    assert "Region | Sales | Growth" in text
    assert "Europe | 4.2M | 9%" in text
    assert text.count("Merged cell appears once") == 1
    assert text.index("Revenue") < text.index("Region") < text.index("Closing paragraph")


def test_pptx_text_frames_tables_and_notes() -> None:
    text = parse("deck.pptx", make_pptx())
    for expected in (
        "Roadmap 2027",
        "Ship the vector store",
        "Speaker note: mention the hybrid search",
        "Metric | Value",
        "Latency | 18 ms",
        "A free text box",
    ):
        assert expected in text
    assert text.index("Roadmap") < text.index("Numbers")


def test_html_strips_script_and_style() -> None:
    html = (
        b"<!doctype html><html><head><title>T</title><style>body{color:red}</style>"
        b"<script>var secret = 1;</script></head><body><h1>Heading</h1><p>Caf&eacute; &amp; more"
        b"<br>next line</p><table><tr><td>a</td><td>b</td></tr></table><noscript>no js</noscript></body></html>"
    )
    text = parse("page.html", html)
    assert "Heading" in text and "Café & more" in text and "next line" in text
    assert "a b" in text
    for hidden in ("color:red", "secret", "no js"):
        assert hidden not in text


def test_json_is_pretty_printed() -> None:
    text = parse("data.json", b'{"name":"assistd","tags":["a","b"],"nested":{"k":1}}')
    assert json.loads(text) == {"name": "assistd", "tags": ["a", "b"], "nested": {"k": 1}}
    assert '\n  "name": "assistd"' in text


def test_invalid_json_is_indexed_as_text() -> None:
    assert parse("data.json", b'{"unterminated": ') == '{"unterminated":'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("plain ascii".encode("ascii"), "plain ascii"),
        ("naïve café 日本".encode(), "naïve café 日本"),
        ("\ufeffwith bom".encode(), "with bom"),
        ("utf-16 text ü".encode("utf-16"), "utf-16 text ü"),  # with BOM
        ("utf-16le without a bom".encode("utf-16-le"), "utf-16le without a bom"),
        ("utf-16be without a bom".encode("utf-16-be"), "utf-16be without a bom"),
        (b"line one\r\nline two\r\n\r\n\r\n\r\nline three", "line one\nline two\n\nline three"),
    ],
)
def test_text_encodings(data: bytes, expected: str) -> None:
    assert parse("notes.txt", data) == expected


@pytest.mark.parametrize("ext", sorted(SUPPORTED_EXTENSIONS - {".doc", ".docx", ".pptx", ".pdf", ".json", ".html"}))
def test_every_source_extension_is_text(ext: str) -> None:
    assert parse(f"file{ext}", b"print('hello')  # code\n") == "print('hello')  # code"


def test_extension_is_case_insensitive_and_content_type_fills_in() -> None:
    assert parse("README.MD", b"# Title") == "# Title"
    assert parse("upload", b"# Title", "text/markdown; charset=utf-8") == "# Title"
    assert parse("upload", b"<p>hi</p>", "text/html") == "hi"
    with pytest.raises(UnsupportedFile):
        parse("upload", b"hi")
    with pytest.raises(UnsupportedFile):  # an explicit unsupported extension wins over the content type
        parse("table.csv", b"a,b", "text/plain")


# --- errors ------------------------------------------------------------------------------------------


def _code(filename: str, data: bytes, **kwargs: int) -> str:
    with pytest.raises(FileError) as info:
        parse(filename, data, **kwargs)
    assert info.value.message == str(info.value)
    return info.value.code


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.mark.parametrize(
    ("filename", "data", "code"),
    [
        ("image.png", PNG, "unsupported_file"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "unsupported_file"),
        ("sheet.xlsx", b"PK\x03\x04", "unsupported_file"),
        ("data.csv", b"a,b\n1,2", "unsupported_file"),
        ("noext", b"hello", "unsupported_file"),
        ("legacy.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "unsupported_file"),
        ("binary.txt", PNG, "unsupported_file"),  # binary junk in a text type
        ("latin1.txt", "café".encode("latin-1"), "unsupported_file"),  # neither utf-8 nor utf-16
        ("nul.py", b"abc\x00def\x00ghi", "unsupported_file"),
        ("ctrl.md", b"\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f" * 10, "unsupported_file"),
        ("empty.txt", b"", "invalid_file"),
        ("blank.md", b" \n\t\n", "invalid_file"),
        ("empty.pdf", b"", "invalid_file"),
        ("notpdf.pdf", b"this is not a pdf at all", "invalid_file"),
        ("truncated.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "invalid_file"),
        ("image.pdf", PNG, "invalid_file"),
        ("notzip.docx", b"just text", "invalid_file"),
        ("notzip.pptx", b"just text", "invalid_file"),
        ("encrypted.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024), "invalid_file"),
        ("encrypted.pptx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024), "invalid_file"),
        ("empty-tags.html", b"<html><body><script>x()</script></body></html>", "invalid_file"),
    ],
)
def test_error_codes(filename: str, data: bytes, code: str) -> None:
    assert _code(filename, data) == code


def test_encrypted_pdf_is_invalid() -> None:
    with pytest.raises(InvalidFile, match="encrypted"):
        parse("secret.pdf", make_pdf([["top secret"]], encrypt=True))


def test_pdf_without_text_is_invalid() -> None:
    with pytest.raises(InvalidFile, match="no extractable text"):
        parse("scan.pdf", make_pdf([[]]))


def test_too_large() -> None:
    assert _code("big.txt", b"x" * 101, max_bytes=100) == "invalid_file"
    assert parse("ok.txt", b"x" * 100, max_bytes=100) == "x" * 100


def test_office_files_of_the_wrong_kind() -> None:
    assert _code("deck.docx", make_pptx()) == "invalid_file"
    assert _code("report.pptx", make_docx()) == "invalid_file"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not an office document")
    assert _code("fake.docx", buffer.getvalue()) == "invalid_file"


def test_empty_docx_and_pptx_are_invalid() -> None:
    empty_doc, empty_deck = io.BytesIO(), io.BytesIO()
    docx.Document().save(empty_doc)
    pptx.Presentation().save(empty_deck)
    assert _code("empty.docx", empty_doc.getvalue()) == "invalid_file"
    assert _code("empty.pptx", empty_deck.getvalue()) == "invalid_file"


# --- fuzz: random and truncated input never raises anything but FileError -------------------------

FUZZ_EXTENSIONS = [".pdf", ".docx", ".pptx", ".html", ".json", ".txt", ".py"]


def _parse_or_file_error(filename: str, data: bytes) -> None:
    try:
        text = parse(filename, data)
    except FileError as exc:
        assert exc.code in ("unsupported_file", "invalid_file")
    else:
        assert isinstance(text, str) and text == text.strip() and text


@pytest.mark.parametrize("ext", FUZZ_EXTENSIONS)
def test_fuzz_random_bytes(ext: str) -> None:
    rng = random.Random(f"fuzz{ext}")
    for _ in range(40):
        _parse_or_file_error(f"f{ext}", rng.randbytes(rng.randint(1, 4096)))


@pytest.mark.parametrize(
    ("ext", "make"),
    [(".pdf", lambda: make_pdf([["alpha beta"], ["gamma delta"]])), (".docx", make_docx), (".pptx", make_pptx)],
)
def test_fuzz_truncated_and_corrupted(ext: str, make: object) -> None:
    assert callable(make)
    data: bytes = make()
    rng = random.Random(f"trunc{ext}")
    cuts = sorted({rng.randint(1, len(data) - 1) for _ in range(25)} | {1, len(data) // 2, len(data) - 1})
    for cut in cuts:
        _parse_or_file_error(f"f{ext}", data[:cut])
    for _ in range(25):
        corrupted = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        _parse_or_file_error(f"f{ext}", bytes(corrupted))


def test_deeply_nested_json_does_not_crash() -> None:
    _parse_or_file_error("deep.json", b"[" * 100_000 + b"]" * 100_000)


# --- speed -------------------------------------------------------------------------------------------


def test_hundred_page_pdf_extracts_and_chunks_quickly() -> None:
    rng = random.Random(7)
    words = [
        "vector",
        "store",
        "chunk",
        "token",
        "embedding",
        "search",
        "hybrid",
        "keyword",
        "semantic",
        "rank",
        "file",
        "assistant",
    ]
    pages = [[" ".join(rng.choice(words) for _ in range(12)) for _ in range(40)] for _ in range(100)]
    data = make_pdf(pages)
    started = time.perf_counter()
    text = parse("long.pdf", data)
    parsed = time.perf_counter()
    chunks = chunk(text)
    done = time.perf_counter()
    assert len(text) > 300_000 and len(chunks) > 100
    assert parsed - started < 5.0, f"100-page PDF took {parsed - started:.2f}s to parse"
    assert done - parsed < 1.0, f"chunking {len(chunks)} chunks took {done - parsed:.2f}s"
