import pytest

from ingest.chunking import approximate_token_count, chunk_document, split_sentences, window
from ingest.documents import KIND_FAQ, KIND_TEXT, Block, Document


def words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def doc(*blocks: Block, kind: str = KIND_TEXT, title: str = "T") -> Document:
    return Document(doc_id="d", source="s", title=title, kind=kind, text="", blocks=list(blocks))


def test_split_sentences_keeps_text_and_handles_both_scripts():
    text = "We do not ship to P.O. boxes. Next one! Third? 你好。再见！好的；Done."
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert parts[0] == "We do not ship to P.O. boxes. "  # an abbreviation is not a sentence end
    assert "你好。" in parts and "再见！" in parts and "好的；" in parts


def test_windows_are_bounded_and_overlap():
    counts = [10] * 20
    spans = window(counts, [False] * 20, max_tokens=50, overlap=20)
    assert spans[0] == (0, 5)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert sum(counts[s2:e2]) <= 50
        assert e1 - s2 == 2  # 20 tokens of overlap = two units
    assert spans[-1][1] == 20  # everything covered


def test_windows_prefer_paragraph_ends():
    counts = [10] * 10
    para_end = [False, False, False, True, False, False, False, False, False, True]
    spans = window(counts, para_end, max_tokens=60, overlap=0)
    assert spans[0] == (0, 4)  # cut after the paragraph (40 tokens) rather than mid-paragraph at 60


def test_chunks_never_exceed_the_budget_and_never_split_words():
    text = "\n\n".join(words(40, f"p{i}w") + "." for i in range(6))
    chunks = chunk_document(doc(Block(text)), max_tokens=64, overlap=16)
    assert len(chunks) > 3
    for c in chunks:
        assert approximate_token_count([c.text])[0] <= 64
        for token in c.text.replace(".", " ").split():
            assert token.startswith("p") and "w" in token  # whole words only
    all_words = {w.strip(".") for c in chunks for w in c.text.split()}
    assert all_words == {w.strip(".") for w in text.split()}  # nothing lost


def test_an_overlong_sentence_is_cut_between_words():
    chunks = chunk_document(doc(Block(words(300) + "."), title=""), max_tokens=100, overlap=0)
    assert len(chunks) == 3
    assert all(approximate_token_count([c.text])[0] <= 100 for c in chunks)


def test_long_chinese_text_is_cut_between_characters_at_sentence_ends_first():
    sentence = "流明电子的退货政策非常简单。"  # 13 characters + punctuation
    chunks = chunk_document(doc(Block(sentence * 20)), max_tokens=40, overlap=0)
    assert len(chunks) > 1
    assert all(c.text.endswith("。") for c in chunks)


def test_title_length_is_taken_off_the_budget_and_section_kept():
    d = doc(Block(words(100) + ".", section="Refunds > Card"), title=words(10, "t"))
    chunks = chunk_document(d, max_tokens=50, overlap=0)
    assert all(approximate_token_count([c.text])[0] <= 50 - 12 for c in chunks)
    assert all(c.section == "Refunds > Card" for c in chunks)


def test_faq_rows_are_one_chunk_each_matching_on_the_question():
    blocks = [
        Block("30 days.", section="How long?", metadata={"question": "How long?", "answer": "30 days.", "row": 2}),
        Block("Yes.", section="Free?", metadata={"question": "Free?", "answer": "Yes.", "row": 3}),
    ]
    chunks = chunk_document(doc(*blocks, kind=KIND_FAQ), max_tokens=16)
    assert [c.match_text for c in chunks] == ["How long?", "Free?"]
    assert chunks[0].metadata["answer"] == "30 days."
    assert chunks[0].text == "How long?\n30 days."


def test_budget_must_be_sane():
    with pytest.raises(ValueError):
        chunk_document(doc(Block("x")), max_tokens=4)


def test_embedding_batches_hold_a_token_budget():
    from rag.embeddings import token_budget_batches

    lengths = [300] * 40 + [10] * 500
    batches = token_budget_batches(lengths, max_tokens=254, batch_size=32)
    assert sorted(i for b in batches for i in b) == list(range(540))  # every text once
    for batch in batches:
        longest = min(max(lengths[i] for i in batch) + 2, 256)
        assert len(batch) * longest <= 32 * 254 and len(batch) <= 16 * 32
    assert max(len(b) for b in batches) > 32  # short texts go many at a time
