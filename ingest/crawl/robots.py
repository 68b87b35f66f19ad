"""robots.txt (RFC 9309): which paths of a site Kefu's crawler may fetch, how long it waits between requests
(the non-standard but widely used `Crawl-delay`), and the sitemaps the file names.

The groups whose `User-agent` names the crawler's product token (case-insensitively, a version suffix such as
"KefuBot/1.0" ignored) apply, merged; when none does, the `*` groups do. Of the rules that match a path the
longest wins, and `Allow` wins a tie; `*` matches any run of characters and a final `$` anchors the end.
Patterns are matched without regular expressions (no pathological backtracking on a hostile file). Only the
first MAX_ROBOTS_BYTES are read, as the RFC allows. Pure: the crawler fetches the file and decides what an
unreachable one means (RFC 9309: a 4xx allows everything, a 5xx or network failure disallows everything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
MAX_RULES = 10_000
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Rule:
    allow: bool
    pattern: str


@dataclass
class Robots:
    rules: list[Rule] = field(default_factory=list)
    crawl_delay: float | None = None
    sitemaps: list[str] = field(default_factory=list)
    disallow_all: bool = False  # robots.txt could not be read (5xx, network): nothing may be fetched

    @classmethod
    def allowing_all(cls) -> Robots:
        return cls()

    @classmethod
    def refusing_all(cls) -> Robots:
        return cls(disallow_all=True)

    def allowed(self, url: str) -> bool:
        """Whether the crawler may fetch this URL (absolute, or a path with its query)."""
        parts = urlsplit(url)
        target = _normalise(parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if target == "/robots.txt":
            return True
        if self.disallow_all:
            return False
        best: Rule | None = None
        for rule in self.rules:
            if _matches(rule.pattern, target) and (
                best is None or len(rule.pattern) > len(best.pattern) or (len(rule.pattern) == len(best.pattern) and rule.allow)
            ):
                best = rule
        return best is None or best.allow


def _normalise(path: str) -> str:
    """Escapes in upper case, so "/a%2fb" and "/a%2Fb" compare equal; non-ASCII as UTF-8 escapes."""
    return quote(_ESCAPE_RE.sub(lambda m: "%" + m.group(1).upper(), path), safe="/:@!$&'()*+,;=-._~%?")


def _matches(pattern: str, target: str) -> bool:
    """Whether a robots pattern matches the start of the target (all of it with a final `$`).

    Wildcard matching by two pointers, remembering only the last `*`: linear in practice, at worst
    len(pattern) x len(target), never exponential."""
    anchored = pattern.endswith("$")
    if anchored:
        pattern = pattern[:-1]
    else:
        pattern += "*"
    p = t = 0
    star = -1
    star_t = 0
    while t < len(target):
        if p < len(pattern) and pattern[p] == "*":
            star, star_t = p, t
            p += 1
        elif p < len(pattern) and pattern[p] == target[t]:
            p += 1
            t += 1
        elif star >= 0:
            p = star + 1
            star_t += 1
            t = star_t
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _product_token(value: str) -> str:
    return value.strip().split("/", 1)[0].strip().lower()


def parse_robots(text: str, agent: str) -> Robots:
    """The rules of a robots.txt for the crawler whose product token is `agent` ("KefuBot")."""
    token = agent.lower()
    groups: list[tuple[list[str], list[Rule], list[float]]] = []
    sitemaps: list[str] = []
    in_agents = False  # the previous line was a User-agent line: another one joins the same group
    for raw in text[:MAX_ROBOTS_BYTES].splitlines():
        line = raw.split("#", 1)[0].strip()
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key in ("user-agent", "useragent"):
            if not in_agents:
                groups.append(([], [], []))
            groups[-1][0].append(_product_token(value))
            in_agents = True
            continue
        in_agents = False
        if key == "sitemap":
            if value:
                sitemaps.append(value)
        elif not groups:
            continue  # a rule before any User-agent line belongs to no group
        elif key in ("allow", "disallow"):
            if value and len(groups[-1][1]) < MAX_RULES:
                groups[-1][1].append(Rule(key == "allow", _normalise(value)))
        elif key == "crawl-delay":
            try:
                delay = float(value)
            except ValueError:
                continue
            if delay >= 0:
                groups[-1][2].append(delay)
    mine = [g for g in groups if token in g[0]] or [g for g in groups if "*" in g[0]]
    rules = [rule for g in mine for rule in g[1]][:MAX_RULES]
    delays = [d for g in mine for d in g[2]]
    return Robots(rules=rules, crawl_delay=max(delays) if delays else None, sitemaps=sitemaps)
