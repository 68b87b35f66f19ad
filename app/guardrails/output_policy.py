"""The output policy: every text that reaches a customer (generated, extractive, FAQ, an agent's reply, a
passage shown as a source) passes here first, in every front end. Pure.

What a customer may be shown is Markdown text with links only to allowed hosts, and nothing a browser or a
Markdown renderer would act on:

- no raw HTML: tags and comments are removed (their text stays), a `<` that could open a tag is spaced;
- no images (`![alt](url)` becomes its alt text) unless the image's host is allowed (KEFU_ALLOWED_IMAGE_HOSTS);
- links (`[text](url)`, `<url>`, reference definitions, bare URLs, which renderers make clickable) only with
  http(s) to an allowed host (the knowledge base's own source sites and KEFU_ALLOWED_LINK_DOMAINS, subdomains
  included); any other link keeps its text and loses its target, a bare one becomes "[link removed]";
  `javascript:`, `data:`, `vbscript:` and `file:` never survive;
- no control characters (tab and newline stay), no lone surrogates (a sampled model can emit both);
- configurable patterns (KEFU_BLOCKED_PATTERNS, plus built-in cryptocurrency wallet addresses: the planted
  "pay to this bitcoin address" attack) block the whole text, which is replaced by a safe message.

`LeakCheck` recognises a reply that gives its instructions away (the prompt's canary, or a long span of the
system prompt). `PolicyStream` applies the policy (and the leak check) to a stream: text is released up to a point where no link, tag or URL
is still open, so a customer never sees a forbidden link flash by, and the concatenation of what it released
equals `apply` on the whole text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

BLOCKED_MESSAGE = {
    "en": "I'm sorry, I can't share that answer. Would you like me to connect you with a human agent?",
    "zh": "抱歉，这个回答无法提供给您。需要为您转接人工客服吗？",
}
LINK_REMOVED = "(link removed)"  # not in brackets: "[link removed](x)" would be a link again
SAFE_SCHEMES = ("http", "https")
# Built-in block patterns: payment redirection to a crypto wallet is never a legitimate support answer.
WALLET_PATTERNS = (
    r"\b(?:bc1[a-z0-9]{25,59}|[13][a-km-zA-HJ-NP-Z1-9]{25,34})\b",  # bitcoin
    r"\b0x[a-fA-F0-9]{40}\b",  # ethereum
)

_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_SCRIPT_RE = re.compile(r"<(script|style|iframe|object|template)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_AUTOLINK_RE = re.compile(r"<((?:[A-Za-z][A-Za-z0-9+.-]{1,31}):[^<>\s]*)>")
_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?])")
_LABEL = r"((?:[^\[\]]|\[[^\[\]]*\])*)"  # link text: brackets may nest one level deep
_DESTINATION = r"\(\s*(<[^<>\n]*>|[^()\s<][^()\s]*(?:\([^()\s]*\)[^()\s]*)*|)(?:\s+[\"'(][^\n]*?[\"')])?\s*\)"  # CommonMark
_IMAGE_RE = re.compile(r"!\[" + _LABEL + r"\]" + _DESTINATION)
_LINK_RE = re.compile(r"\[" + _LABEL + r"\]" + _DESTINATION)
_REF_IMAGE_RE = re.compile(r"!\[([^\[\]]*)\]\[[^\[\]]*\]")
_REF_DEF_RE = re.compile(r"^[ \t]{0,3}\[[^\[\]]+\]:[ \t]*<?\S+>?(?:[ \t]+.*)?$", re.MULTILINE)
_BARE_URL_RE = re.compile(r"(?:(?:https?|ftp):|(?<![\w.-])www\.|(?<=[a-z])www\.|(?<![\w:/])//(?=[^\s/<>\[\]()]*\.))[^\s<>\[\]()`]*[^\s<>\[\]().,;:!?'\"`。，；：！？]", re.IGNORECASE)
_EMBEDDED_URL_RE = re.compile(r"(?:https?|ftp)://|www\.", re.IGNORECASE)
_EMAIL = r"(?P<email>(?<![\w.+-])[A-Za-z0-9._%+-]+@(?P<domain>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+))"
_EMAIL_RE = re.compile(_EMAIL)
_URL_OR_EMAIL_RE = re.compile(_BARE_URL_RE.pattern + "|" + _EMAIL, re.IGNORECASE)
_BAD_SCHEME_RE = re.compile(r"\b(?:javascript|vbscript|data|file)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class PolicyResult:
    text: str
    changes: tuple[str, ...] = ()  # what was removed or rewritten (for the audit log), e.g. "link:evil.example"
    blocked: bool = False


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == a or host.endswith("." + a) for a in allowed)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url if "://" in url else "http://" + url).hostname or "").lower()
    except ValueError:
        return ""


@dataclass
class OutputPolicy:
    link_hosts: Sequence[str] = ()  # hosts links may point to (subdomains included)
    image_hosts: Sequence[str] = ()  # hosts images may load from; none by default
    blocked_patterns: Sequence[str] = ()  # regular expressions that block a whole text
    _blocked: list[re.Pattern] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.link_hosts = tuple(h.lower().strip().lstrip(".") for h in self.link_hosts if h.strip())
        self.image_hosts = tuple(h.lower().strip().lstrip(".") for h in self.image_hosts if h.strip())
        self._blocked = [re.compile(p, re.IGNORECASE) for p in (*WALLET_PATTERNS, *self.blocked_patterns)]

    def url_allowed(self, url: str, image: bool = False) -> bool:
        url = url.strip()
        scheme = url.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) else ""
        if scheme and scheme not in SAFE_SCHEMES:
            return False
        if not scheme and not url.lower().startswith("www."):
            return False  # relative links mean nothing to a customer's browser; an attacker's favourite
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            return False  # user@host: "https://lumen.example@evil.example" goes to evil.example
        return _host_allowed(host_of(url), self.image_hosts if image else self.link_hosts)

    def apply(self, text: str, language: str = "en") -> PolicyResult:
        changes: list[str] = []
        cleaned = clean_text(text)
        if cleaned != text:
            changes.append("control-characters")
        for pattern in self._blocked:
            if pattern.search(cleaned):
                return PolicyResult(BLOCKED_MESSAGE.get(language, BLOCKED_MESSAGE["en"]), ("blocked:" + pattern.pattern[:40],), True)
        out = cleaned
        for _ in range(8):  # removing a link or tag can form another ("[[a](bad)](x)" → "[a](x)"): until stable
            before, out = out, self._links(self._html(out, changes), changes)
            if out == before:
                break
        return PolicyResult(out, tuple(changes))

    def _html(self, text: str, changes: list[str]) -> str:
        if _COMMENT_RE.search(text) or _TAG_RE.search(text):
            changes.append("html")
        for _ in range(8):  # removing a tag can join the text around it into another: until nothing changes
            before = text
            text = _TAG_RE.sub("", _SCRIPT_RE.sub("", _COMMENT_RE.sub("", text)))
            if text == before:
                break
        # Autolinks (<https://…>) are judged; every other "<" that could open a tag is spaced.
        out = []
        for i, part in enumerate(_AUTOLINK_RE.split(text)):
            if i % 2 == 0:
                out.append(_TAG_START_RE.sub("< ", part))
            elif self.url_allowed(part):
                out.append(f"<{part}>")
            else:
                changes.append("link:" + (host_of(part) or part.split(":", 1)[0]))
                out.append(LINK_REMOVED)
        return "".join(out)

    def _links(self, text: str, changes: list[str]) -> str:
        def image(m: re.Match) -> str:
            if self.url_allowed(m.group(2).strip("<>"), image=True):
                return m.group(0)
            changes.append("image:" + (host_of(m.group(2)) or "?"))
            return m.group(1)

        def link(m: re.Match) -> str:
            label, url = m.group(1), m.group(2).strip("<>")
            if self.url_allowed(url):  # its text is judged too: a link may hide inside an allowed one's label
                inner = self._links(label, changes) if "[" in label else label
                return m.group(0) if inner == label else "[" + inner + m.group(0)[1 + len(label) :]
            changes.append("link:" + (host_of(url) or url.split(":", 1)[0][:20]))
            return label

        text = _IMAGE_RE.sub(image, text)
        text = _REF_IMAGE_RE.sub(lambda m: (changes.append("image") or m.group(1)), text)
        text = _LINK_RE.sub(link, text)

        def definition(m: re.Match) -> str:
            changes.append("link-definition")
            return ""

        text = _REF_DEF_RE.sub(definition, text)
        protected = re.split(r"(\[[^\[\]]*\]\([^()\s]*\)|<https?://[^<>\s]*>)", text)  # links already judged

        def email(m: re.Match) -> str:
            if _host_allowed(m.group("domain"), self.link_hosts):
                return m.group(0)
            changes.append("email:" + m.group("domain").lower())
            return m.group(0).replace("@", "＠")  # readable, but no renderer makes a mailto: link of it

        def bare(m: re.Match) -> str:
            # A renderer may start a link anywhere a scheme or www. appears inside this run: each must pass.
            starts = [0] + [e.start() for e in _EMBEDDED_URL_RE.finditer(m.group(0), 1)]
            if all(self.url_allowed(m.group(0)[i:]) for i in starts):
                # A renderer that does not take this for a URL (glued to a word) may still link an address in it.
                return _EMAIL_RE.sub(email, m.group(0))
            changes.append("link:" + (host_of(m.group(0)) or "?"))
            return LINK_REMOVED

        def url_or_email(m: re.Match) -> str:
            return bare(m) if m.group("email") is None else email(m)

        def disarm(part: str) -> str:
            return _URL_OR_EMAIL_RE.sub(url_or_email, _BAD_SCHEME_RE.sub("", part))

        return "".join(p if i % 2 else disarm(p) for i, p in enumerate(protected))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_INVISIBLE = set("\u200b\u2060\u2028\u2029\ufeff\u00ad") | {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}


def clean_text(text: str) -> str:
    """Text without control characters (tab and newline kept; CR LF becomes LF), lone surrogates (as U+FFFD), private-use
    characters, or the invisible ones that hide or reorder text (zero-width space, bidirectional overrides)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SURROGATE_RE.sub("\ufffd", text)
    return "".join(
        c for c in text if c in "\n\t" or (unicodedata.category(c) not in ("Cc", "Cs", "Co") and c not in _INVISIBLE)
    )


def public_source(source: str) -> str:
    """A document's source as a customer may see it: a URL or a relative name, never a server path."""
    if source.lower().startswith(("http://", "https://")):
        return source
    parts = source.replace("\\", "/").split("/")
    if source.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", source) or ".." in parts:
        return parts[-1]
    return source


def hosts_of(urls: Iterable[str]) -> list[str]:
    """The hosts of the http(s) URLs among `urls` (document sources): the sites links may point to."""
    return sorted({host_of(u) for u in urls if u.lower().startswith(("http://", "https://")) and host_of(u)})


_MARKDOWN_PUNCTUATION = re.compile(r"([\[\]()<>!`*_\\])")


def safe_cut(text: str) -> int:
    """The end of the longest prefix of `text` that can be released on its own: it ends just after whitespace
    that lies outside every Markdown or HTML construct (`[…]`, `[…](…)`, `<…>`, `<!--…-->`), and before the
    first construct still open (an unmatched `[`, a link whose `)` has not come, a `<` without its `>`, or a
    trailing `]` or `!` that the next piece could turn into a link or an image). 0 when there is none."""
    cut, i, n = 0, 0, len(text)
    opened: list[int] = []  # unmatched "[" positions
    while i < n:
        c = text[i]
        if c == "[":
            opened.append(i)
        elif c == "]" and opened:
            start = opened.pop()
            if i + 1 == n:
                return _before(cut, start, opened)
            if text[i + 1] == "(":
                depth, j = 0, i + 2
                while j < n and not (text[j] == ")" and depth == 0):
                    depth += {"(": 1, ")": -1}.get(text[j], 0)
                    j += 1
                if j >= n:
                    return _before(cut, start, opened)
                i = j
        elif c == "<":
            end = text.find("-->", i) + 2 if text.startswith("<!--", i) else text.find(">", i)
            if end < i:
                return _before(cut, i, opened)
            i = end
        elif c in " \n\t" and not opened:
            cut = i + 1
        i += 1
    if opened or text.endswith("!"):
        return _before(cut, opened[0] if opened else n - 1, opened)
    return cut


def _before(cut: int, position: int, opened: list[int]) -> int:
    return min(cut, position, *opened) if opened else min(cut, position)


class LeakCheck:
    """Whether a reply gives away its instructions: it holds a secret (the prompt's canary), or copies a span of
    at least `min_span` characters (spaces and case ignored) of the protected text (the system prompt)."""

    def __init__(self, secrets: Sequence[str] = (), protected: str = "", min_span: int = 48):
        self.secrets = [s for s in secrets if s]
        self.min_span = min_span
        squeezed = _squeeze(protected)
        self._spans = {squeezed[i : i + min_span] for i in range(max(0, len(squeezed) - min_span + 1))}

    def __call__(self, text: str) -> bool:
        if any(secret in text for secret in self.secrets):
            return True
        squeezed = _squeeze(text)
        return any(squeezed[i : i + self.min_span] in self._spans for i in range(max(0, len(squeezed) - self.min_span + 1)))


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


class PolicyStream:
    """`OutputPolicy.apply` over a stream of pieces. Holds text back from an unfinished link, image, tag or URL
    (at most `MAX_HELD` characters) and from the last partial word; `blocked` turns true, and nothing more is
    released, as soon as a blocking pattern appears."""

    MAX_HELD = 400

    def __init__(self, policy: OutputPolicy, language: str = "en", leaks: LeakCheck | None = None):
        self.policy = policy
        self.language = language
        self.leaks = leaks
        self._pending = ""
        self.released: list[str] = []
        self.changes: list[str] = []
        self.blocked = False
        self._tail = ""

    def feed(self, piece: str) -> str:
        if self.blocked:
            return ""
        self._pending += piece
        cut, forced = self._safe_cut(self._pending)
        return self._release(cut, forced) if cut > 0 else ""

    def flush(self) -> str:
        if self.blocked or not self._pending:
            return ""
        return self._release(len(self._pending))

    def _safe_cut(self, text: str) -> tuple[int, bool]:
        """Where to cut (`safe_cut`: never inside a word or a construct, so released pieces cannot join into a
        new link, URL or address). Text held longer than MAX_HELD is released whole, its Markdown punctuation
        escaped and a space after it, so no later text can complete a link with it."""
        cut = safe_cut(text)
        if cut == 0 and len(text) > self.MAX_HELD:
            return len(text), True
        return cut, False

    def _release(self, cut: int, forced: bool = False) -> str:
        head, self._pending = self._pending[:cut], self._pending[cut:]
        result = self.policy.apply(head, self.language)
        if forced:  # an opener that never closed: its brackets escaped, it can never join later text in a link
            result = PolicyResult(_MARKDOWN_PUNCTUATION.sub(r"\\\1", result.text) + " ", result.changes, result.blocked)
        if self.leaks is not None and self.leaks(self._tail + result.text):
            result = PolicyResult("", ("leak",), True)
        if result.blocked:
            self.blocked = True
            self.changes.extend(result.changes)
            return ""
        self.changes.extend(result.changes)
        self.released.append(result.text)
        self._tail = (self._tail + result.text)[-400:]
        return result.text
