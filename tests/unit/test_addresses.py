"""Recipient allow-list and relay tricks (gateway/addresses.py)."""

from __future__ import annotations

import pytest

from gateway.addresses import mailbox_name, relay_problem

ALLOWED = ("localhost", "city.example.lg.jp", ".pref.example.lg.jp")


@pytest.mark.parametrize("addr", [
    "user@localhost", "a.b+c@city.example.lg.jp", "x@kikaku.pref.example.lg.jp",
    "USER@LOCALHOST", "山田@localhost",
])
def test_allowed(addr: str) -> None:
    assert relay_problem(addr, ALLOWED) is None


@pytest.mark.parametrize("addr", [
    "user@example.com", "user%example.com@localhost", "host!user@localhost",
    "@localhost:user@example.com", "user@localhost.", "user@.localhost",
    "user@localhost.example.com", "user@xlocalhost", "user@pref.example.lg.jp",
    "user@l\u043ecalhost", '"a@b"@localhost', "user@[127.0.0.1]", "a@b@localhost",
    ".user@localhost", "us..er@localhost", "user.@localhost", "user@", "@localhost",
    "user@-localhost", "user@local_host", "user@localhost\u3002",
])
def test_refused(addr: str) -> None:
    problem = relay_problem(addr, ALLOWED)
    assert problem is not None and problem.startswith("5.7.1")


@pytest.mark.parametrize(("addr", "name"), [
    ("User@Localhost", "user@localhost"),
    ("../../etc@localhost", "%2E.%2F..%2Fetc@localhost"),
    (".hidden@localhost", "%2Ehidden@localhost"),
    ("山@localhost", "%E5%B1%B1@localhost"),
])
def test_mailbox_name_is_a_safe_directory(addr: str, name: str) -> None:
    got = mailbox_name(addr)
    assert got == name and "/" not in got and not got.startswith(".")
