"""The bot's own Redis connection: replies not waited for are read in step, a lost
script cache and a connection the server closed are recovered, failures are visible
and always Redis errors (the engine answers "busy" for them, never a 500)."""

from __future__ import annotations

import logging
import socket
import threading

import hiredis
import pytest
import redis

from bot import link as bot_link
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


# -- failures, against a stand-in for Redis on a loopback port -------------------------

CLOSE = object()


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class FakeRedis:
    """Answers the connection handshake (HELLO, CLIENT SETINFO) and each script with what ``answer``
    returns for it: reply bytes, None (stay silent) or CLOSE (reply nothing, hang up),
    or a tuple of reply bytes and CLOSE (reply, then hang up)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.connections = 0
        self.scripts: list[bytes] = []
        self.hung_up = threading.Event()  # a connection was closed by this server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve_then_note, args=(conn,), daemon=True).start()

    def _serve_then_note(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        finally:
            self.hung_up.set()  # after ``with conn`` closed the socket

    def _serve(self, conn: socket.socket) -> None:
        reader = hiredis.Reader()
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                while (command := reader.gets()) is not False:
                    if command[0].upper() == b"HELLO":
                        conn.sendall(b"%%1\r\n$5\r\nproto\r\n:%s\r\n" % command[1])
                        continue
                    if command[0].upper() not in (b"EVAL", b"EVALSHA"):
                        conn.sendall(b"+OK\r\n")  # CLIENT SETINFO, SELECT
                        continue
                    self.scripts.append(command[0].upper())
                    answer = self.answer(command)
                    reply, close = (answer, False) if not isinstance(answer, tuple) else answer
                    if reply is CLOSE:
                        return
                    if reply is not None:
                        conn.sendall(reply)
                    if close is CLOSE:
                        return

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.3, socket_connect_timeout=2)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def fake_redis():
    servers = []

    def make(answer):
        servers.append(FakeRedis(answer))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_a_redis_that_does_not_answer_fails_the_call_with_a_redis_timeout_and_the_next_reconnects(fake_redis):
    silent = [True]
    server = fake_redis(lambda command: None if silent[0] else bulk(b"back"))
    link = Link(server.client())
    with pytest.raises(redis.TimeoutError):
        link.call(ECHO, [], ["x"])
    silent[0] = False
    assert link.call(ECHO, [], ["x"]) == b"back"
    assert server.connections == 2


def test_a_connection_lost_after_sending_fails_the_call_and_the_next_reconnects(fake_redis):
    calls = []
    server = fake_redis(lambda command: CLOSE if not calls.append(1) and len(calls) == 1 else bulk(b"ok"))
    link = Link(server.client())
    with pytest.raises(redis.ConnectionError):
        link.call(ECHO, [], ["x"])
    assert link.call(ECHO, [], ["x"]) == b"ok"
    assert server.connections == 2


def test_a_connection_lost_before_a_sent_script_was_confirmed_is_logged_and_the_next_goes_on_a_new_one(
    fake_redis, caplog
):
    server = fake_redis(lambda command: CLOSE if command[0].upper() == b"EVAL" else bulk(b"ok"))
    link = Link(server.client())
    link.send(ECHO, [], ["finish"])
    with caplog.at_level(logging.WARNING, logger="zhizhi.bot"):
        assert link.call(ECHO, [], ["claim"]) == b"ok"
    assert "lost before a sent script was confirmed" in caplog.text
    assert server.connections == 2 and server.scripts == [b"EVAL", b"EVALSHA"]


def test_a_connection_closed_after_the_reply_to_a_sent_script_is_replaced_after_an_idle_while(
    fake_redis, monkeypatch
):
    server = fake_redis(lambda command: (b":1\r\n", CLOSE) if command[0].upper() == b"EVAL" else bulk(b"ok"))
    link = Link(server.client())
    link.send(ECHO, [], ["finish"])
    monkeypatch.setattr(bot_link, "IDLE_CHECK", -1.0)  # as if the link had been idle a while
    link._sock.recv(1, socket.MSG_PEEK)  # the reply has arrived (the close follows it)
    assert server.hung_up.wait(5)  # and the server has closed its end (no race with a busy machine)
    assert link.call(ECHO, [], ["claim"]) == b"ok"
    assert server.connections == 2


def test_an_error_reply_to_a_waited_script_is_raised_and_the_connection_kept(r):
    link = Link(r)
    assert link.call(ECHO, [], ["one"]) == b"one"
    conn = link._conn
    with pytest.raises(redis.ResponseError):
        link.call(BROKEN, [], [])
    assert link.call(ECHO, [], ["two"]) == b"two"
    assert link._conn is conn


def test_a_link_made_before_fork_is_not_used_by_the_child(r):
    link = thread_link(r)
    bot_link._generation[0] += 1  # what the at-fork hook does in a child
    try:
        assert thread_link(r) is not link
    finally:
        bot_link._generation[0] -= 1
