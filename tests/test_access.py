"""Role checks on the server side (`app.access.control`): a customer principal cannot act as an agent or admin, nor read
another customer's conversation; agents and admins can. Real service over the sample knowledge base."""

import pytest


from app.access.auth import ADMIN, AGENT, CUSTOMER, AuthenticationError, PermissionDenied, Principal, anonymous, require


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
    answer = service.acting_as(alice).ask_stream("How much does shipping cost?").finish()
    sid = answer.session_id
    assert service.conversation(sid).owner == "anon:browser-a"
    assert [m.role for m in service.acting_as(alice).history(sid)] == ["user", "assistant"]
    for attempt in (
        lambda: service.acting_as(mallory).history(sid),
        lambda: service.acting_as(mallory).ask_stream("and express?", sid).finish(),
        lambda: service.acting_as(mallory).feedback(answer.message_id, "down"),
        lambda: service.acting_as(mallory).history("no-such-session"),  # denied, not "not found"
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    # Holding the id (an anonymous chat keeps it in the page) is holding the conversation.
    holder = anonymous("browser-b", frozenset({sid}))
    assert len(service.acting_as(holder).history(sid)) == 2


def test_customers_cannot_use_agent_or_admin_calls(service):
    customer = service.acting_as(anonymous("x"))
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
    sid = service.acting_as(anonymous("c")).ask_stream("I want to talk to a human").finish().session_id
    agent = service.acting_as(Principal("user", "anna", AGENT, "user:1"))
    assert [c.id for c in agent.conversations("waiting_agent")] == [sid]
    agent.agent_reply(sid, "Hello, Anna here.")
    assert service.conversation(sid).agent == "anna"
    with pytest.raises(PermissionDenied):
        agent.delete_documents(["x"])
    admin = service.acting_as(Principal("user", "root", ADMIN, "user:2"))
    assert len(admin.documents()) == 13 and admin.history(sid)[-1].author == "anna"


def test_desk_batch_insights_and_team_calls_check_the_role(service):
    customer_sid = service.acting_as(anonymous("c")).ask_stream("I want to talk to a human").finish().session_id
    customer = service.acting_as(anonymous("c", frozenset({customer_sid})))
    agent = service.acting_as(Principal("user", "anna", AGENT, "user:1"))
    admin = service.acting_as(Principal("user", "root", ADMIN, "user:2"))
    sheet = ("q.csv", b"question\nHow much does shipping cost?\n")
    agent_calls = {
        "suggest_reply": lambda c: c.suggest_reply(customer_sid),
        "save_faq": lambda c: c.save_faq("Is this allowed?", "It is not."),
        "batch_preview": lambda c: c.batch_preview(*sheet),
        "answer_upload": lambda c: c.answer_upload(*sheet),
    }
    admin_calls = {
        "compare_rankings": lambda c: c.compare_rankings("refund"),
        "insights": lambda c: c.insights(),
        "users": lambda c: c.users(),
        "add_user": lambda c: c.add_user("mallory", ADMIN, "long enough password"),
        "set_user_disabled": lambda c: c.set_user_disabled("root"),
        "generator_status": lambda c: c.generator_status(),
    }
    for name, call in {**agent_calls, **admin_calls}.items():
        with pytest.raises(PermissionDenied):
            call(customer)
    for name, call in admin_calls.items():
        with pytest.raises(PermissionDenied):
            call(agent)
    assert service.users() == []  # nobody was added on the way
    draft = agent.suggest_reply(customer_sid)
    assert draft.question == "I want to talk to a human" and len(service.history(customer_sid)) == 2  # nothing stored
    assert agent.batch_preview(*sheet).columns == ["question"]
    assert [m for m in admin.compare_rankings("refund", k=3)] == ["lexical", "dense", "hybrid"]
    assert admin.insights().conversations == 1
    with pytest.raises(PermissionDenied, match="your own account"):
        admin.set_user_disabled("root")
    # The customer may see their own place in the queue and ratings, nobody else's.
    assert customer.queue_position(customer_sid) == 1
    with pytest.raises(PermissionDenied):
        service.acting_as(anonymous("m")).queue_position(customer_sid)


# -- the one gate ----------------------------------------------------------------------------------------------

NOT_ACTIONS = {  # what anyone may call: no role, nothing privileged
    "acting_as", "ask", "retriever", "sign_in", "principal", "key_principal", "warm_up", "readiness",
    "generator_config", "close",
    "widget_visitor", "visitor_principal", "widget_origin_known",  # the widget's sign-in: a key and a page's origin
}


def test_every_public_service_method_passes_the_gate():
    import inspect

    from app.access.gate import rule_of
    from app.services import KefuService

    methods = {n: m for n, m in inspect.getmembers(KefuService, inspect.isfunction) if not n.startswith("_")}
    ungated = {n for n, m in methods.items() if rule_of(m) is None}
    assert ungated == NOT_ACTIONS
    assert len(methods) - len(ungated) >= 40


def test_the_cli_and_the_web_are_audited_alike(service):
    from click.testing import CliRunner

    from app.cli import main

    added = CliRunner().invoke(main, ["users", "add", "bea", "--role", "agent"], input="a long enough password\n")
    assert added.exit_code == 0, added.output
    web = service.acting_as(Principal("user", "root", ADMIN, "user:2"))
    web.add_user("cid", AGENT, "another long password")
    records = [(r["action"], r["actor"], r["role"]) for r in service.audit_log() if r["action"] == "add_user"]
    assert records == [("add_user", "user:2", ADMIN), ("add_user", "local", ADMIN)]


def test_refusals_are_not_audited_and_failures_are(service):
    from app.errors import NotFoundError

    before = len(service.audit_log())
    with pytest.raises(PermissionDenied):
        service.acting_as(anonymous("x")).delete_documents(["faq"])
    assert len(service.audit_log()) == before  # refused: nothing was done
    with pytest.raises(NotFoundError):
        service.delete_documents(["no-such-document"])
    [record] = service.audit_log(limit=1)
    assert record["action"] == "delete_documents" and record["error_code"] == "NotFoundError"


def test_a_bound_caller_is_offered_actions_only(service):
    customer = service.acting_as(anonymous("x"))
    with pytest.raises(AttributeError, match="not an action"):
        customer.close()
    with pytest.raises(AttributeError, match="not an action"):
        customer.components  # noqa: B018
