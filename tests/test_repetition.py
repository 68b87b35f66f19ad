from inference.repetition import LoopGuard


def feed_all(guard: LoopGuard, text: str, piece_size: int = 3) -> int:
    """Feed text in small pieces (as tokens arrive); return how many characters were fed before it tripped."""
    for i in range(0, len(text), piece_size):
        if guard.feed(text[i : i + piece_size]):
            return i + piece_size
    return len(text)


def test_a_numbered_loop_trips_on_the_third_repeat():
    loop = "".join(f"{n}. Tap the earbuds to select them.\n" for n in range(30, 60))
    stopped_at = feed_all(LoopGuard(), loop)
    assert stopped_at <= loop.index("34.")  # at the end of the third line, long before the end


def test_ordinary_answers_never_trip():
    answer = (
        "You can return most items within 30 days of delivery [1]. Refunds go to the original payment method "
        "within 5 business days [1]. Yes. Yes. Yes.\n- Keep the box\n- Keep the receipt\n"
        "退货期限为 30 天。退款 5 个工作日内到账。"
    )
    guard = LoopGuard()
    assert feed_all(guard, answer) == len(answer) and not guard.tripped


def test_chinese_loops_trip_too():
    assert LoopGuard().feed("请稍候，客服马上回复您。" * 3 + "再") is True


def test_repetition_penalty_demotes_tokens_already_generated():
    import torch

    from inference.sampling import SamplingParams, next_tokens, penalize_repeats

    logits = torch.tensor([[2.0, 1.9, -1.0], [2.0, 1.9, -1.0]])
    previous = torch.tensor([[0, -1], [-1, -1]])  # row 0 already said token 0; row 1 nothing yet
    assert next_tokens(logits, SamplingParams()).tolist() == [0, 0]
    assert next_tokens(logits, SamplingParams(repetition_penalty=1.2), previous=previous).tolist() == [1, 0]
    penalized = penalize_repeats(torch.tensor([[-1.0, 1.0]]), torch.tensor([[0, 1]]), 2.0)
    assert penalized.tolist() == [[-2.0, 0.5]]  # negative logits multiplied, positive divided
