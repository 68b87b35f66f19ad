import re

import pytest

from rag.analysis import Analyzer, bigrams, detect_language, normalize


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def test_latin_words_are_lowercased_stemmed_and_stop_worded(analyzer):
    assert analyzer.terms("The Refunds were REFUNDED quickly") == ["refund", "refund", "quick"]


def test_full_width_letters_and_digits_are_normalised(analyzer):
    assert normalize("ＡＢＣ１２３") == "abc123"
    assert analyzer.terms("ＰａｙＰａｌ") == analyzer.terms("paypal")


def test_punctuation_and_query_syntax_never_survive_analysis(analyzer):
    terms = analyzer.terms('refund" title:x NEAR(a b) *star* -not "退款政策?" AND')
    assert terms  # something is left to search for
    for term in terms:
        assert re.fullmatch(r"[^\W_]+", term), term  # letters and digits only


def test_chinese_is_cut_by_jieba_search_mode_with_parts_of_compounds(analyzer):
    terms = analyzer.terms("中华人民共和国退款政策")
    assert "退款" in terms and "政策" in terms
    assert "中华人民共和国" in terms and "共和国" in terms and "人民" in terms  # the parts as well as the whole


def test_chinese_queries_are_cut_precisely_and_drop_question_words(analyzer):
    assert analyzer.query_terms("退货期限是多久？") == ["退货", "期限"]
    assert analyzer.query_terms("我有多长时间可以退货？") == ["退货"]


def test_mixed_text_keeps_both_scripts(analyzer):
    terms = analyzer.terms("Lumen Buds Pro 耳机怎么配对")
    assert "lumen" in terms and "bud" in terms and "耳机" in terms and "配对" in terms


def test_user_dictionary_keeps_product_names_whole(tmp_path):
    plain = Analyzer().query_terms("极光手表续航")
    assert "极光手表" not in plain
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("极光手表 1000 nz\n", encoding="utf-8")
    custom = Analyzer(user_dict=user_dict)
    assert "极光手表" in custom.query_terms("极光手表续航")
    assert custom.fingerprint != Analyzer().fingerprint  # a store built with the other must re-index


def test_missing_user_dictionary_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="user dictionary"):
        Analyzer(user_dict=tmp_path / "nope.txt")


def test_bigram_mode():
    assert bigrams("退款政策") == ["退款", "款政", "政策"]
    assert bigrams("退") == ["退"]
    assert Analyzer(chinese="bigram").terms("退款政策 refunds") == ["退款", "款政", "政策", "refund"]


def test_unknown_chinese_mode_lists_the_choices():
    with pytest.raises(ValueError, match="jieba, bigram"):
        Analyzer(chinese="ngram")


def test_detect_language():
    assert detect_language("How long do I have to return an item?") == "en"
    assert detect_language("我有多长时间可以退货？") == "zh"
    assert detect_language("我想退 iPhone 15") == "zh"
    assert detect_language("12345 !!!") == ""
