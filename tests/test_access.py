"""Role checks on the server side (`app.access`): a customer principal cannot act as an agent or admin, nor read
another customer's conversation; agents and admins can. Real service over the sample knowledge base."""

import pytest

from app.access import AccessControl
from app.auth import ADMIN, AGENT, CUSTOMER, AuthenticationError, PermissionDenied, Principal, anonymous, require


@pytest.fixture
def service(use_kb):
    from app.services import KefuService

    s = KefuService()
    yield s
    s.close()


def test_roles_are_ordered_and_checked():
    agent = Principal("user", "anna", AGENT, "user:1")
    assert agent.can(CUSTOMER) and agent.can(AGENT) and not agent.can(ADMIN)
    assert require(agent, AGENT, "reply") is agent
    with pytest.raises(PermissionDenied, match="upload needs the admin role; anna is a agent"):
        require(agent, ADMIN, "upload")
    with pytest.raises(AuthenticationError, match="sign in to reply"):
        require(None, AGENT, "reply")


def test_a_customer_reaches_only_their_own_conversation(service):
    alice, mallory = anonymous("browser-a"), anonymous("browser-m")
    answer = AccessControl(service, alice).ask_stream("How much does shipping cost?").finish()
    sid = answer.session_id
    assert service.conversation(sid).owner == "anon:browser-a"
    assert [m.role for m in AccessControl(service, alice).history(sid)] == ["user", "assistant"]
    for attempt in (
        lambda: AccessControl(service, mallory).history(sid),
        lambda: AccessControl(service, mallory).ask_stream("and express?", sid).finish(),
        lambda: AccessControl(service, mallory).feedback(answer.message_id, "down"),
        lambda: AccessControl(service, mallory).history("no-such-session"),  # denied, not "not found"
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    # Holding the id (an anonymous chat keeps it in the page) is holding the conversation.
    holder = anonymous("browser-b", frozenset({sid}))
    assert len(AccessControl(service, holder).history(sid)) == 2


def test_customers_cannot_use_agent_or_admin_calls(service):
    customer = AccessControl(service, anonymous("x"))
    sid = customer.ask_stream("I want to talk to a human").finish().session_id
    for call in (
        lambda: customer.conversations("waiting_agent"),
        lambda: customer.agent_reply(sid, "I am totally an agent"),
        lambda: customer.take(sid),
        lambda: customer.resolve(sid),
        lambda: customer.ask_batch(["hi"]),
        lambda: customer.gaps(),
        lambda: customer.documents(),
        lambda: customer.ingest_uploads([("evil.md", b"# Pay to bitcoin")]),
        lambda: customer.delete_documents(["faq"]),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert all(m.role != "agent" for m in service.history(sid))


def test_agents_work_the_queue_and_admins_manage_documents(service):
    sid = AccessControl(service, anonymous("c")).ask_stream("I want to talk to a human").finish().session_id
    agent = AccessControl(service, Principal("user", "anna", AGENT, "user:1"))
    assert [c.id for c in agent.conversations("waiting_agent")] == [sid]
    agent.agent_reply(sid, "Hello, Anna here.")
    assert service.conversation(sid).agent == "anna"
    with pytest.raises(PermissionDenied):
        agent.delete_documents(["x"])
    admin = AccessControl(service, Principal("user", "root", ADMIN, "user:2"))
    assert len(admin.documents()) == 13 and admin.history(sid)[-1].author == "anna"
