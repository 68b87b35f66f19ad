"""Staff accounts (`app.access.users`, `kefu users`): argon2id hashes, one message for every wrong sign-in, rate limits per
user name and per client, sign-ins that expire or end when the account is disabled. Real database: SQLite, and
PostgreSQL in its tier."""

from datetime import timedelta

import pytest

from app.access.auth import ADMIN, AGENT, AuthenticationError
from app.db.database import Database
from app.errors import InputError
from app.settings import AuthSettings
from app.access.users import WRONG, UserStore
from conftest import kefu, kefu_json


@pytest.fixture
def users(database_url):
    db = Database(database_url)
    yield UserStore(db, AuthSettings(login_max_failures=3, login_max_client_failures=5, login_window_minutes=15,
                                     session_minutes=30))  # fmt: skip
    db.close()


def test_passwords_are_stored_as_argon2id_hashes_only(users):
    users.add("anna", AGENT, "correct horse battery")
    with users.db.read() as db:
        from sqlalchemy import text

        stored = db.execute(text("SELECT password_hash FROM users WHERE name = 'anna'")).scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(InputError, match="exists already"):
        users.add("anna", ADMIN, "another password")
    with pytest.raises(InputError, match="too short"):
        users.add("bob", AGENT, "short")
    with pytest.raises(InputError, match="staff accounts are agent or admin"):
        users.add("carol", "customer", "long enough password")
    with pytest.raises(InputError, match="not a usable user name"):
        users.add("../etc", AGENT, "long enough password")


def test_sign_in_gives_a_principal_and_every_wrong_case_the_same_message(users):
    users.add("anna", AGENT, "correct horse battery")
    sign_in = users.sign_in("anna", "correct horse battery", "10.0.0.1")
    who = users.principal(sign_in)
    assert (who.kind, who.name, who.role) == ("user", "anna", AGENT) and who.id.startswith("user:")
    assert users.get("anna").last_login_at is not None
    for name, password in (("anna", "wrong password"), ("nobody", "correct horse battery"), ("", "")):
        with pytest.raises(AuthenticationError) as caught:
            users.sign_in(name, password, "10.0.0.2")
        assert str(caught.value) == WRONG


def test_failed_sign_ins_are_limited_per_user_and_per_client(users):
    users.add("anna", AGENT, "correct horse battery")
    users.add("bob", AGENT, "bob's long password")
    for _ in range(3):
        with pytest.raises(AuthenticationError, match=WRONG):
            users.sign_in("anna", "guess", "10.0.0.1")
    # The user is locked, even with the right password and from another address.
    with pytest.raises(AuthenticationError, match="too many failed sign-ins for 'anna': try again in 15 minutes"):
        users.sign_in("anna", "correct horse battery", "10.0.0.9")
    # The client has 3 failures; two more (on other names) lock the address for every name.
    for name in ("x1", "x2"):
        with pytest.raises(AuthenticationError, match=WRONG):
            users.sign_in(name, "guess", "10.0.0.1")
    with pytest.raises(AuthenticationError, match="from this address"):
        users.sign_in("bob", "bob's long password", "10.0.0.1")
    assert users.principal(users.sign_in("bob", "bob's long password", "10.0.0.2")).name == "bob"
    # When the window has passed, both may try again.
    later = users.clock() + timedelta(minutes=16)
    users.clock = lambda: later
    assert users.sign_in("anna", "correct horse battery", "10.0.0.1").name == "anna"


def test_a_successful_sign_in_resets_the_users_count(users):
    users.add("anna", AGENT, "correct horse battery")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            users.sign_in("anna", "guess", "a")
    users.sign_in("anna", "correct horse battery", "a")
    for _ in range(2):
        with pytest.raises(AuthenticationError, match=WRONG):
            users.sign_in("anna", "guess", "b")
    assert users.sign_in("anna", "correct horse battery", "c").name == "anna"


def test_sign_ins_expire_and_end_when_the_account_is_disabled_or_changed(users):
    users.add("anna", AGENT, "correct horse battery")
    sign_in = users.sign_in("anna", "correct horse battery")
    assert sign_in.expires_at - users.clock() <= timedelta(minutes=30)
    later = users.clock() + timedelta(minutes=31)
    now = users.clock
    users.clock = lambda: later
    with pytest.raises(AuthenticationError, match="expired"):
        users.principal(sign_in)
    users.clock = now
    users.set_disabled("anna")
    with pytest.raises(AuthenticationError, match="disabled"):
        users.principal(sign_in)
    with pytest.raises(AuthenticationError, match=WRONG):
        users.sign_in("anna", "correct horse battery")
    users.set_disabled("anna", False)
    assert users.principal(sign_in).name == "anna"


def test_kefu_users_reads_passwords_from_stdin_and_never_prints_them(isolated_settings):
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, ["users", "add", "anna", "--role", "agent"], input="s3cret-password\n")
    assert result.exit_code == 0, result.output
    assert "s3cret-password" not in result.output and "Added agent anna" in result.output
    result = CliRunner().invoke(main, ["users", "add", "bob", "--role", "admin"], input="")
    assert result.exit_code == 1 and "no password on standard input" in result.output
    listed = kefu_json("users", "list")["users"]
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [("anna", "agent", False)]
    assert "password" not in str(listed) and "hash" not in str(listed)
    assert "Disabled anna" in kefu("users", "disable", "anna")
    assert kefu_json("users", "list")["users"][0]["disabled"] is True
    demo = kefu("users", "demo")
    lines = {line.split()[1]: line.split()[-1] for line in demo.splitlines() if "password:" in line}
    assert set(lines) == {"demo-admin", "demo-agent"}
    from app.services import KefuService

    service = KefuService()
    assert service.principal(service.sign_in("demo-admin", lines["demo-admin"])).role == ADMIN
    service.close()
