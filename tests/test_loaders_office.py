"""PDF, DOCX, XLSX and HTML loaders on files built here, plus the sample manuals in data/kb."""

import zipfile

import pytest

from ingest.errors import LoadError
from ingest.html import load_html
from ingest.limits import Limits
from ingest.loaders import LoadOptions, decode_bytes
from ingest.office import load_docx, load_pdf, load_xlsx
from tests.conftest import KB

OPTS = LoadOptions()


def make_pdf(path, pages, title=None):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    if title:
        c.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()


def test_pdf_keeps_text_per_page_with_page_numbers(tmp_path):
    pdf = tmp_path / "guide.pdf"
    make_pdf(pdf, [["Setup guide", "Plug in the charger."], [], ["Reset: hold the button for 15 seconds."]], title="Setup")
    [doc] = load_pdf(pdf, OPTS)
    assert doc.title == "Setup"
    assert [(b.page, b.text.splitlines()[0]) for b in doc.blocks] == [(1, "Setup guide"), (3, "Reset: hold the button for 15 seconds.")]


def test_sample_pdf_manual():
    [doc] = load_pdf(KB / "manuals" / "lumen-buds-pro-manual.pdf", OPTS)
    assert doc.title == "Lumen Buds Pro - User Manual"
    assert len(doc.blocks) == 3 and doc.blocks[2].page == 3
    assert "15 seconds" in doc.blocks[2].text


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a PDF"),
        (b"hello, I am text", "not a PDF"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog", "damaged or truncated PDF"),
    ],
)
def test_bad_pdfs_are_explained(tmp_path, content, message):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(content)
    with pytest.raises(LoadError, match=message):
        load_pdf(pdf, OPTS)


def test_truncated_and_textless_pdfs(tmp_path):
    full = tmp_path / "full.pdf"
    make_pdf(full, [["Some text on page one."]] * 3)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(LoadError, match="damaged or truncated|no text"):
        load_pdf(cut, OPTS)
    blank = tmp_path / "blank.pdf"
    make_pdf(blank, [[], []])
    with pytest.raises(LoadError, match="has no text \\(no text layer, and no pictures to read by OCR\\)"):
        load_pdf(blank, OPTS)  # blank pages are not handed to OCR


def test_docx_headings_paragraphs_and_tables(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Watch manual", level=1)
    d.add_paragraph("Read this first.")
    d.add_heading("Charging", level=2)
    d.add_paragraph("A full charge takes 90 minutes.")
    table = d.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Feature", "Value"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Water", "5ATM"
    d.add_heading("Straps", level=3)
    d.add_paragraph("Straps are not covered.")
    path = tmp_path / "watch.docx"
    d.save(str(path))
    [doc] = load_docx(path, OPTS)
    assert doc.title == "Watch manual"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("", "Read this first."),
        ("Charging", "A full charge takes 90 minutes.\n\n| Feature | Value |\n| Water | 5ATM |"),
        ("Charging > Straps", "Straps are not covered."),
    ]


def test_sample_docx_manual_in_chinese():
    [doc] = load_docx(KB / "manuals" / "lumen-watch-s2-manual.docx", OPTS)
    assert doc.title == "流明手表 S2 使用说明书"
    sections = [b.section for b in doc.blocks]
    assert "充电与续航" in sections and "主要功能" in sections
    assert any("| 防水 | 5ATM" in b.text for b in doc.blocks)


def test_docx_zip_bomb_is_refused_before_inflating(tmp_path):
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w") as f:
            block = b"<w:t>" + b"A" * (1 << 20) + b"</w:t>"
            for _ in range(120):
                f.write(block)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(LoadError, match="ZIP bomb"):
        load_docx(bomb, OPTS)
    with pytest.raises(LoadError, match="not a valid DOCX"):
        (tmp_path / "fake.docx").write_bytes(b"PK\x03\x04 not really")
        load_docx(tmp_path / "fake.docx", OPTS)


def test_zip_entry_count_limit(tmp_path):
    many = tmp_path / "many.docx"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(30):
            z.writestr(f"part{i}.xml", "<x/>")
    with pytest.raises(LoadError, match="holds 30 parts"):
        load_docx(many, LoadOptions(limits=Limits(max_zip_entries=20)))


def test_xlsx_faq_with_configurable_columns(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Frage", "Antwort", "Kategorie"])
    ws.append(["Versand?", "3-5 Tage", "shipping"])
    ws.append([None, None, None])
    ws.append(["Rückgabe?", "30 Tage", "returns"])
    path = tmp_path / "faq.xlsx"
    wb.save(str(path))
    with pytest.raises(LoadError, match="no question column.*KEFU_FAQ_QUESTION_COLUMN"):
        load_xlsx(path, OPTS)
    [doc] = load_xlsx(path, LoadOptions(question_column="Frage", answer_column="antwort"))
    assert [(b.metadata["question"], b.metadata["answer"], b.metadata["Kategorie"]) for b in doc.blocks] == [
        ("Versand?", "3-5 Tage", "shipping"),
        ("Rückgabe?", "30 Tage", "returns"),
    ]


def test_html_drops_boilerplate_and_keeps_headings(tmp_path):
    page = tmp_path / "help.html"
    page.write_text(
        """<html><head><title>Help centre</title><style>p {color: red}</style></head><body>
        <nav><a href="/">Home</a> | <a href="/shop">Shop</a></nav>
        <header>Lumen Electronics</header>
        <div role="navigation">Menu</div>
        <h1>Help centre</h1><p>Welcome.</p>
        <h2>Returns</h2><p>You have <b>30 days</b> to return an item.</p>
        <script>alert("steal cookies")</script>
        <ul><li>Keep the box</li><li>Print the label</li></ul>
        <footer>© 2026 Lumen · Privacy</footer></body></html>""",
        encoding="utf-8",
    )
    [doc] = load_html(page, OPTS)
    assert doc.title == "Help centre"
    text = "\n".join(b.text for b in doc.blocks)
    assert "You have 30 days to return an item." in text
    assert "Keep the box" in text
    for junk in ("alert", "steal", "Home", "Menu", "Privacy", "color: red", "Lumen Electronics"):
        assert junk not in text
    assert [b.section for b in doc.blocks] == ["", "Returns"]


def test_western_code_page_text_is_detected():
    text = "Café crème brûlée: naïve façade, déjà vu — résumé of the piñata."
    assert decode_bytes(text.encode("cp1252")) == text
