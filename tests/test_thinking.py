"""The reasoning filter: DeepSeek-R1's <think>…</think> never reaches a customer, however the stream is split."""

import random

import pytest

from inference.thinking import ThinkFilter, strip_think

TEXT = "<think>The customer asks about refunds. 5 < 6 and <b> is not a tag.</think>\n\nRefunds take 5 business days [1]."
ANSWER = "Refunds take 5 business days [1]."


def run(pieces, inside=False):
    f = ThinkFilter(inside=inside)
    return "".join(f.feed(p) for p in pieces) + f.flush()


def test_every_two_way_split_hides_the_reasoning():
    for i in range(len(TEXT) + 1):
        assert run([TEXT[:i], TEXT[i:]]) == ANSWER, f"split at {i}"


def test_character_by_character_and_random_splits():
    assert run(list(TEXT)) == ANSWER
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(TEXT)), rng.randint(1, 12)))
        pieces = [TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)])]
        assert run(pieces) == ANSWER


def test_reasoning_opened_by_the_prompt_has_no_opening_tag():
    # R1's template ends the prompt with "<think>\n": the model's first words are reasoning.
    assert run(["Let me check the ", "policy.</th", "ink>\n\nYes", ", we do."], inside=True) == "Yes, we do."


def test_text_that_only_looks_like_a_tag_is_released():
    f = ThinkFilter()
    assert f.feed("Press <") == "Press "
    assert f.feed("b> to start") == "<b> to start"  # "<b" can no longer become "<think>"
    assert f.feed(" <thi") == " "
    assert f.flush() == "<thi"  # the stream ended: it was text after all


def test_unclosed_reasoning_is_dropped_and_counted():
    f = ThinkFilter()
    shown = f.feed("Hello. <think>secret plans") + f.feed(" go on") + f.flush()
    assert shown == "Hello. "
    assert f.hidden_chars == len("secret plans go on")


def test_a_stray_closing_tag_and_several_blocks():
    assert strip_think("</think>Answer <think>x</think>one <think>y</think>two") == "Answer one two"


@pytest.mark.parametrize("inside", [False, True])
def test_nothing_visible_when_all_is_reasoning(inside):
    text = "all reasoning, no answer" if inside else "<think>all reasoning, no answer"
    assert run([text[:5], text[5:]], inside=inside) == ""
