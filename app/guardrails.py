"""Guardrails on what a customer writes: when to hand the conversation to a human. Pure functions."""

from __future__ import annotations

import re

# Asking for a person, in English or Chinese. "客服" alone is not enough: "客服电话是多少" asks for a number.
_HUMAN_RE = re.compile(
    r"""
    \b(talk|speak|chat|connect|transfer|put)\b[^.?!]{0,30}\b(human|person|agent|representative|operator|someone|somebody|staff)\b
    | ^\s*(human|agent|representative|operator|real\ person)(\s+please)?\s*[.!?]*\s*$
    | \b(real|live)\s+(person|human|agent)\b
    | 转人工 | 人工客服 | 人工服务 | 找人工 | 要人工 | 真人 | 人工\s*[!！。]?\s*$
    """,
    re.IGNORECASE | re.VERBOSE,
)


def wants_human(text: str) -> bool:
    """True when the customer asks to talk to a person."""
    return bool(_HUMAN_RE.search(text))
