import json

import pytest

from ingest.documents import KIND_FAQ, KIND_RECORD
from ingest.loaders import LoadError, LoadOptions, decode_bytes, load_csv, load_jsonl, load_markdown, load_text

OPTS = LoadOptions()


def test_markdown_sections_follow_the_heading_hierarchy(tmp_path):
    md = tmp_path / "returns.md"
    md.write_text("# Returns\n\nIntro.\n\n## Window\n\n30 days.\n\n### Holidays\n\nJan 31.\n\n## Refunds\n\n5 days.\n")
    [doc] = load_markdown(md, OPTS)
    assert doc.title == "Returns"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("", "Intro."),
        ("Window", "30 days."),
        ("Window > Holidays", "Jan 31."),
        ("Refunds", "5 days."),
    ]


def test_markdown_front_matter_title_and_code_fences(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("---\ntitle: Shipping\n---\nText\n```\n# not a heading\n```\n")
    [doc] = load_markdown(md, OPTS)
    assert doc.title == "Shipping"
    assert "# not a heading" in doc.blocks[0].text


def test_text_title_is_the_first_short_line(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("Store hours\n\nOpen 9 to 5.\n")
    [doc] = load_text(txt, OPTS)
    assert doc.title == "Store hours"


def test_faq_csv_with_chinese_column_names_in_gbk(tmp_path):
    csv_path = tmp_path / "常见问题.csv"
    csv_path.write_bytes("问题,答案,分类\n可以退货吗？,可以，30 天内。,退货\n只有问题,\n".encode("gbk"))
    [doc] = load_csv(csv_path, OPTS)
    assert doc.kind == KIND_FAQ
    assert len(doc.blocks) == 1  # the ragged row without an answer is dropped
    assert doc.blocks[0].metadata == {"question": "可以退货吗？", "answer": "可以，30 天内。", "row": 2, "分类": "退货"}


def test_faq_csv_without_question_column_is_a_clear_error(tmp_path):
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text("title,body\na,b\n")
    with pytest.raises(LoadError, match="no question column.*found 'title', 'body'"):
        load_csv(csv_path, OPTS)


def test_jsonl_records_keep_their_ids(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        json.dumps({"_id": "4983", "title": "T", "text": "Body"}) + "\n" + json.dumps({"id": 7, "text": "Only text"}) + "\n"
    )
    docs = load_jsonl(path, OPTS)
    assert [(d.doc_id, d.title, d.kind) for d in docs] == [("4983", "T", KIND_RECORD), ("7", "7", KIND_RECORD)]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"_id": "1", "text": "a"}\n{broken\n', "line 2 is not valid JSON"),
        ('{"title": "no id"}\n', "line 1 has no '_id' or 'id'"),
        ('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', "repeats the id '1'"),
        ("[1, 2]\n", "not a JSON object"),
    ],
)
def test_bad_jsonl_gets_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(LoadError, match=message):
        load_jsonl(path, OPTS)


@pytest.mark.parametrize(
    "data, expected",
    [
        ("退款政策".encode("utf-8"), "退款政策"),
        (b"\xef\xbb\xbf" + "退款".encode("utf-8"), "退款"),
        ("退款政策".encode("gb18030"), "退款政策"),
        ("退款 refund".encode("utf-16"), "退款 refund"),
        ("refund policy".encode("utf-16-le"), "refund policy"),
    ],
)
def test_text_encodings_are_detected(data, expected):
    assert decode_bytes(data) == expected


def test_binary_data_is_not_text():
    with pytest.raises(LoadError, match="binary"):
        decode_bytes(bytes(range(256)) * 4, "x.txt")
