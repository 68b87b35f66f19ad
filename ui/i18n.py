"""The web app's own words in English and Chinese. The language follows the browser (`st.context.locale`) until
the visitor picks one in the sidebar; answers are in the customer's own language whatever this says.

`t(key, **values)` looks a text up in the current language (English when a key has no Chinese). Only the
interface's fixed text lives here (the customer's pages; the staff pages' words are in `ui.staff_texts`, merged
into the same table); text from answers, documents and agents is rendered by `ui.rendering`. `label(kind, value)`
names a stored value (a conversation's status, a handoff reason, a role) in words.
"""

from __future__ import annotations

import streamlit as st

from ui.staff_texts import STAFF_TEXTS

LANGUAGES = {"en": "English", "zh": "中文"}
STATE_KEY = "kefu_language"

TEXTS: dict[str, dict[str, str]] = {
    "app_title": {"en": "Kefu 客服", "zh": "客服助手 Kefu"},
    "language": {"en": "Language", "zh": "语言"},
    "nav_customers": {"en": "Customers", "zh": "客户"},
    "nav_staff": {"en": "Staff", "zh": "员工"},
    "nav_agents": {"en": "Agents", "zh": "客服"},
    "nav_admin": {"en": "Admin", "zh": "管理"},
    "page_chat": {"en": "Chat", "zh": "咨询"},
    "page_sign_in": {"en": "Sign in", "zh": "登录"},
    "page_desk": {"en": "Agent desk", "zh": "人工坐席"},
    "page_batch": {"en": "Batch FAQ", "zh": "批量问答"},
    "page_kb": {"en": "Knowledge base", "zh": "知识库"},
    "page_insights": {"en": "Insights", "zh": "数据洞察"},
    "page_team": {"en": "Team", "zh": "团队"},
    "chat_caption": {
        "en": "Ask about orders, shipping, returns, warranty, payment or your account. 中文提问也可以。",
        "zh": "可咨询订单、配送、退货、保修、支付和账户等问题。You can ask in English too.",
    },
    "chat_placeholder": {"en": "Type your question…", "zh": "请输入您的问题…"},
    "new_conversation": {"en": "New conversation", "zh": "新对话"},
    "talk_to_person": {"en": "Talk to a person", "zh": "转人工客服"},
    "thinking": {"en": "Searching the knowledge base…", "zh": "正在检索知识库…"},
    "warming_up": {"en": "Warming up: loading the knowledge base and models…", "zh": "正在预热：加载知识库和模型…"},
    "warm_failed": {"en": "Warm-up failed: {error}", "zh": "预热失败：{error}"},
    "ready": {"en": "Ready", "zh": "已就绪"},
    "waiting_agent": {
        "en": "Waiting for a person to join (you are number {n} in the queue). Their replies appear here.",
        "zh": "正在等待人工客服接入（您排在第 {n} 位），回复会显示在这里。",
    },
    "with_agent": {"en": "{agent} from our support team is with you.", "zh": "客服 {agent} 正在为您服务。"},
    "resolved": {"en": "This conversation was marked resolved. Write again to continue.", "zh": "本次对话已解决。如需继续，请再次输入。"},
    "bad_link": {"en": "That conversation link is not valid here (a conversation opens only in the browser it "
                 "began in); a new conversation starts here.", "zh": "该对话链接在此无效（对话只能在开始它的浏览器中打开），已为您开始新对话。"},
    "agent_label": {"en": "{agent} (support agent)", "zh": "{agent}（人工客服）"},
    "rated": {"en": "Thanks for your feedback.", "zh": "感谢您的反馈。"},
    "signed_in_as": {"en": "Signed in as **{name}** ({role})", "zh": "已登录：**{name}**（{role}）"},
    "sign_out": {"en": "Sign out", "zh": "退出登录"},
    "sign_in_title": {"en": "Sign in", "zh": "员工登录"},
    "sign_in_caption": {
        "en": "For agents and admins. Customers need no account: the chat is open to everyone.",
        "zh": "仅供客服与管理员使用。客户无需登录即可咨询。",
    },
    "user_name": {"en": "User name", "zh": "用户名"},
    "password": {"en": "Password", "zh": "密码"},
    "sign_in_button": {"en": "Sign in", "zh": "登录"},
    "signing_in": {"en": "Signing you in…", "zh": "正在登录…"},
    "signed_out_expired": {"en": "You were signed out: {reason}", "zh": "您已退出登录：{reason}"},
    "no_permission": {"en": "This page is for {role}s. Sign in with such an account.", "zh": "此页面需要 {role} 权限，请使用相应账号登录。"},
    "mode_faq": {"en": "Answered from the FAQ", "zh": "来自常见问题"},
    "mode_generated": {"en": "Generated from the knowledge base", "zh": "根据知识库生成"},
    "mode_extractive": {"en": "Quoted from the knowledge base", "zh": "摘自知识库"},
    "mode_abstain": {"en": "No answer found", "zh": "未找到答案"},
    "mode_handoff": {"en": "Handed over to a human agent", "zh": "已转人工"},
    "mode_smalltalk": {"en": "Small talk", "zh": "寒暄"},
    "page": {"en": "page {page}", "zh": "第 {page} 页"},
    "open_page": {"en": "Open the page", "zh": "打开原网页"},
    "sources": {"en": "Sources", "zh": "来源"},
}


if TEXTS.keys() & STAFF_TEXTS.keys():
    raise RuntimeError(f"interface texts defined twice: {sorted(TEXTS.keys() & STAFF_TEXTS.keys())}")
TEXTS.update(STAFF_TEXTS)


def browser_language() -> str:
    try:
        locale = st.context.locale
    except Exception:  # no browser context (bare mode)
        locale = None
    return "zh" if isinstance(locale, str) and locale.lower().startswith("zh") else "en"


def language() -> str:
    """The interface language: the visitor's choice, else the browser's."""
    chosen = st.session_state.get(STATE_KEY)
    return chosen if chosen in LANGUAGES else browser_language()


def t(key: str, **values: object) -> str:
    texts = TEXTS[key]
    text = texts.get(language(), texts["en"])
    return text.format(**values) if values else text


def label(kind: str, value: str | None, **values: object) -> str:
    """A stored value in words: `label("status", "waiting_agent")` is "Waiting for an agent"; a value with no
    words of its own is shown as it is."""
    key = f"{kind}_{value}"
    return t(key, **values) if key in TEXTS else str(value or "")


def language_picker() -> None:
    """A sidebar choice of interface language, starting at the browser's."""
    current = language()
    st.session_state.setdefault(STATE_KEY, current)
    st.sidebar.selectbox(
        t("language"), list(LANGUAGES), format_func=LANGUAGES.get, key=STATE_KEY,
    )  # fmt: skip
