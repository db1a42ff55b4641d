"""The WeChat endpoint reads its query string and body straight from the WSGI environ:
the same fields werkzeug would give, and every odd body refused with 4xx (or read as
werkzeug would), nothing processed, never a 500."""

from __future__ import annotations

import io
import time

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bot.wechat import MAX_BODY, query_args
from tests.bot.test_wechat_endpoint import fields, nothing_processed


@pytest.mark.parametrize(
    "query",
    [
        "timestamp=1700000000&nonce=42&encrypt_type=aes&msg_signature=abc&openid=o_1",
        "a=1&a=2&b=",
        "a&=v&&b=x",
        "echostr=a+b%20c%2Bd&nonce=%E4%BD%A0%E5%A5%BD",
        "bad=%E4%BD&odd=%ZZ&pct=%",
        "raw=" + "你好".encode().decode("latin-1"),  # PEP 3333: undecoded bytes as latin-1
        "n%61me=v%61lue",
        "",
    ],
)
def test_query_fields_are_decoded_as_werkzeug_decodes_them(query):
    environ = {"QUERY_STRING": query}
    args = Request(environ).args
    assert query_args(environ) == {name: args.get(name) for name in args}


class Unreadable(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("a body announced too long must not be read")


def call(app, environ) -> tuple[int, bytes]:
    statuses = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return int(statuses[0].split()[0]), body


def signed_environ(wx, **changes):
    query, body = wx.signed_query(fields(f"o_wsgi_{time.time_ns()}"))
    builder = EnvironBuilder(path="/bot/wechat", method="POST", query_string=query,
                             data=body.encode(), content_type="text/xml")  # fmt: skip
    environ = builder.get_environ()
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


def test_a_body_announced_too_long_is_refused_unread(wx, app, db):
    environ = signed_environ(wx, CONTENT_LENGTH=str(MAX_BODY + 1), **{"wsgi.input": Unreadable()})
    status, _ = call(app, environ)
    assert status == 413 and nothing_processed(app, db)


@pytest.mark.parametrize("length", ["12a", "-5", " 9", "1e3"])
def test_a_malformed_content_length_is_refused(wx, app, db, length):
    status, _ = call(app, signed_environ(wx, CONTENT_LENGTH=length))
    assert status == 400 and nothing_processed(app, db)


def test_a_body_shorter_than_its_content_length_is_refused(wx, app, db):
    environ = signed_environ(wx)
    environ["CONTENT_LENGTH"] = str(int(environ["CONTENT_LENGTH"]) + 10)
    status, _ = call(app, environ)
    assert status == 400 and nothing_processed(app, db)


def test_a_chunked_body_is_read_when_the_server_marks_the_input_terminated(wx, app):
    status, body = call(app, signed_environ(wx, CONTENT_LENGTH=None, **{"wsgi.input_terminated": True}))
    assert status == 200 and b"<Encrypt>" in body


def test_an_oversized_chunked_body_is_refused(wx, app, db):
    big = io.BytesIO(b"<xml>" + b" " * MAX_BODY + b"</xml>")
    environ = signed_environ(wx, CONTENT_LENGTH=None, **{"wsgi.input_terminated": True, "wsgi.input": big})
    status, _ = call(app, environ)
    assert status == 413 and nothing_processed(app, db)


def test_a_body_without_length_or_terminated_input_is_not_read(wx, app, db):
    status, _ = call(app, signed_environ(wx, CONTENT_LENGTH=None, **{"wsgi.input": Unreadable()}))
    assert status == 400 and nothing_processed(app, db)  # an empty body: no XML


def test_an_encrypted_message_to_an_account_without_aes_key_is_refused_unprocessed(wx, app, db, monkeypatch):
    query, body = wx.signed_query(fields("o_wsgi_nokey"))
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "wechat", dict(settings.wechat, aes_key=None))
    res = wx.post_raw(query, body)
    assert res.status == 503 and nothing_processed(app, db)


@pytest.mark.parametrize("timestamp", ["²", "1700000000²", "١٧٠٠٠٠٠٠٠٠"])
def test_a_timestamp_of_other_digits_than_ascii_ones_is_refused(wx, app, db, timestamp):
    query, body = wx.signed_query(fields("o_wsgi_digits"))
    query["timestamp"] = timestamp
    res = wx.post_raw(query, body)
    assert res.status == 400 and nothing_processed(app, db)


def test_a_create_time_of_other_digits_than_ascii_ones_is_read_as_none(wx):
    res = wx.post({**fields("o_wsgi_created"), "CreateTime": "²"})
    assert res.status == 200 and "您可以发送" in res.text
