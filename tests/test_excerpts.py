"""What an extractive answer quotes (`app.answering.excerpts`): the unit that answers, readable alone. Pure."""

from app.answering.excerpts import asked_fact, best_excerpt, units
from rag.analysis import Analyzer

ANALYZER = Analyzer()

SHIPPING = """## Delivery options and times

| Option | Delivery time | Cost |
|---|---|---|
| Standard | 3-5 business days | $4.99, free on orders over $50 |
| Express | 1-2 business days | $14.99 |

International orders take 5-10 business days."""

RETURNS = """## How to return an item

To return an item:

1. Sign in and open **Account > Orders**.
2. Choose the order and select **Return an item**.
3. Print the label and drop the parcel at any post office.

Refunds reach your card within 5 business days."""

BUDS = """Lumen Buds Pro. In the box: the Lumen Buds Pro earbuds, a charging case and a USB-C cable.
Charging the Lumen Buds Pro takes about 90 minutes for a full charge. The Lumen Buds Pro pair with any phone."""

STATIONS = """## Opening hours

Our stations open at 7:00 and close at 22:00 every day. They are closed on these days:

- 1 January, when all stations are closed.
- 25 December."""


def excerpt(text: str, question: str) -> str:
    return best_excerpt(text, ANALYZER.query_terms(question), {}, ANALYZER.terms, question=question)


def test_a_table_row_is_read_with_its_header_and_the_header_row_is_never_a_unit():
    found = units(SHIPPING)
    assert [u.kind for u in found] == ["heading", "row", "row", "sentence"]
    assert found[2].text == "Option: Express; Delivery time: 1-2 business days; Cost: $14.99"
    assert excerpt(SHIPPING, "How much is express shipping?").startswith("Option: Express; Delivery time: 1-2 business")


def test_one_step_of_a_procedure_brings_the_whole_procedure_and_its_lead_in():
    quoted = excerpt(RETURNS, "How do I select return an item on my order?")
    assert quoted.startswith("To return an item: 1. Sign in and open Account > Orders. 2. Choose the order")
    assert "3. Print the label" in quoted and "**" not in quoted


def test_terms_every_sentence_shares_count_little_and_the_asked_kind_of_fact_wins():
    assert asked_fact("How long does it take to charge the Lumen Buds Pro?") == "duration"
    assert excerpt(BUDS, "How long does it take to charge the Lumen Buds Pro?").startswith("Charging the Lumen Buds Pro takes")


def test_a_question_about_a_time_gets_the_time_not_a_date_fragment():
    assert asked_fact("What time do your stations close?") == "time"
    quoted = excerpt(STATIONS, "What time do your stations close?")
    assert quoted.startswith("Our stations open at 7:00 and close at 22:00")
    assert not quoted.startswith("1 January")


def test_a_sentence_opening_with_a_pronoun_brings_the_one_before():
    text = "The Watch S2 has a two-year warranty. It covers defects but not accidental damage. Straps are sold apart."
    assert excerpt(text, "does it cover accidental damage").startswith("The Watch S2 has a two-year warranty. It covers")


def test_headings_and_fragments_are_never_quoted_alone():
    text = "## Warranty\n\nWarranty.\n\nThe warranty lasts two years from delivery."
    assert excerpt(text, "warranty") == "The warranty lasts two years from delivery."


def test_chinese_units_and_asked_facts():
    text = "## 退货\n\n自收货之日起 30 天内可以退货。退款将在 5 个工作日内退回原支付方式。"
    assert asked_fact("退款多久到账？") == "duration"
    assert excerpt(text, "退款多久到账？").startswith("退款将在 5 个工作日内")
