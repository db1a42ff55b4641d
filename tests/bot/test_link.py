"""The bot's own Redis connection: replies not waited for are read in step, a lost
script cache and a connection the server closed are recovered, failures are visible."""

from __future__ import annotations

import logging
import socket

import pytest

from bot.link import Link, Script, thread_link
from bot.store import Conversation

ECHO = Script("return ARGV[1]")
BROKEN = Script("return redis.call('NO_SUCH_COMMAND')")


@pytest.fixture
def r(app):
    return app.extensions["zhizhi"].redis


def test_replies_not_waited_for_are_read_before_the_next_command(r):
    link = Link(r)
    for i in range(3):
        link.send(ECHO, [], [f"sent {i}"])
    assert link.call(ECHO, [], ["asked"]) == b"asked"
    assert link.call(ECHO, [], ["again"]) == b"again"


def test_a_finish_not_waited_for_is_applied_before_the_same_threads_next_claim(r):
    first = Conversation(r, "wechat:app:o_link", "m:1")
    assert first.claim().status == "new"
    first.finish('{"text":"hi"}', {"flow": "bind"}, {"pid": None, "roles": []}, wait=False)
    second = Conversation(r, "wechat:app:o_link", "m:2").claim()
    assert second.status == "new"  # the lock was released
    assert second.state == {"flow": "bind"} and second.who == {"pid": None, "roles": []}
    assert Conversation(r, "wechat:app:o_link", "m:1").claim().cached == '{"text":"hi"}'


def test_a_failed_script_that_was_not_waited_for_is_logged(r, caplog):
    link = Link(r)
    link.send(BROKEN, [], [])
    with caplog.at_level(logging.ERROR, logger="zhizhi.bot"):
        assert link.call(ECHO, [], ["fine"]) == b"fine"
    assert "sent without waiting failed" in caplog.text


def test_a_flushed_script_cache_is_reloaded(r, wx):
    assert "您可以发送" in wx.text("o_flush", "帮助").text
    r.script_flush()
    assert "您可以发送" in wx.text("o_flush", "帮助").text


def test_a_connection_the_server_closed_is_replaced_before_sending(r):
    link = thread_link(r)
    assert link.call(ECHO, [], ["one"]) == b"one"
    conn = link._conn
    if not isinstance(conn._sock, socket.socket):
        pytest.skip("the in-process store has no connections to close")
    conn.send_command("CLIENT", "ID")
    client_id = conn.read_response()
    r.client_kill_filter(_id=client_id)
    conn._sock.recv(1, socket.MSG_PEEK)  # wait until the close has arrived
    assert link.call(ECHO, [], ["two"]) == b"two"
    assert link._conn is not conn
