"""The fixed replies of a conversation, in English and Chinese: holding replies, handovers, small talk, refusals,
and the notes an agent's actions leave in the transcript. Pure data and one lookup."""

from __future__ import annotations

from app.answering.rules import message

MESSAGES = {
    "requested": {
        "en": "I'm connecting you with a human agent. Someone from our support team will reply here shortly.",
        "zh": "正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "complaint": {
        "en": "I'm sorry for the trouble. I'm connecting you with a member of our support team, who will reply "
        "here shortly.",
        "zh": "非常抱歉给您带来不便。正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "unanswered": {
        "en": "I still couldn't find an answer in our knowledge base, so I'm connecting you with a human agent. "
        "Someone from our support team will reply here shortly.",
        "zh": "抱歉，知识库中仍然没有找到答案，正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "waiting": {
        "en": "A human agent has been asked to join this conversation and will reply here shortly.",
        "zh": "已为您通知人工客服，请稍候，客服人员会尽快在这里回复您。",
    },
    "queue": {"en": " You are number {n} in the queue.", "zh": "您前面还有 {ahead} 位客户。"},
    "with_agent": {
        "en": "Your message has been passed to the agent handling this conversation.",
        "zh": "您的消息已转给正在为您服务的客服人员。",
    },
    "offer_person": {
        "en": " Would you like me to connect you with a human agent?",
        "zh": "需要为您转接人工客服吗？",
    },
    "greeting": {"en": "Hello! How can I help you today?", "zh": "您好！请问有什么可以帮您？"},
    "thanks": {"en": "You're welcome! Is there anything else I can help with?", "zh": "不客气！还有什么可以帮您的吗？"},
    "goodbye": {"en": "Thank you for contacting us. Goodbye!", "zh": "感谢您的咨询，再见！"},
    "attack": {
        "en": "I'm sorry, I can't help with that. I can answer questions about our products and services, such as "
        "orders, delivery, returns, warranty, payment and your account.",
        "zh": "抱歉，这个请求我无法处理。我可以回答与我们的产品和服务相关的问题，例如订单、配送、退货、保修、支付和账户。",
    },
    "no_agent_here": {
        "en": "I can't connect you with a person here. Please use our support chat, where a member of our team can "
        "take over the conversation.",
        "zh": "这里无法为您转接人工客服。请通过我们的在线客服联系，客服人员可以接手对话。",
    },
    "chitchat": {
        "en": "I can only help with questions about our products and services, such as orders, delivery, returns, "
        "warranty, payment and your account. What would you like to know?",
        "zh": "我只能回答与我们的产品和服务相关的问题，例如订单、配送、退货、保修、支付和账户。请问有什么可以帮您？",
    },
}
SYSTEM_NOTES = {
    "take": "{agent} joined the conversation.",
    "release": "{agent} handed the conversation back to the assistant.",
    "resolve": "{agent} marked the conversation resolved.",
}


def say(key: str, language: str, **values: object) -> str:
    return message(key, language, MESSAGES).format(**values)
