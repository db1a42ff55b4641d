"""Our message-crypto layer against the published WXBizMsgCrypt sample vector."""

from __future__ import annotations

import base64
import struct

import pytest

from bot.crypto import BLOCK, CryptoError, MessageCrypto, sha1_signature, signature_matches

# Tencent's WXBizMsgCrypt sample (also in wechatpy's tests).
TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
TIMESTAMP = "1409735669"
NONCE = "1320562132"
MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVA"
    "FmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSny"
    "U8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszT"
    "fRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9e"
    "hVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)


def sample() -> MessageCrypto:
    return MessageCrypto(TOKEN, AES_KEY, APP_ID)


def test_sample_vector_signature_verifies_and_decrypts():
    c = sample()
    assert c.check(MSG_SIGNATURE, TIMESTAMP, NONCE, ENCRYPT)
    xml = c.decrypt(ENCRYPT)
    assert "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>" in xml
    assert "<Content><![CDATA[abcdteT]]></Content>" in xml
    assert "<MsgId>6054768590064713728</MsgId>" in xml


def test_sample_vector_with_one_changed_signature_character_is_refused():
    bad = MSG_SIGNATURE[:-1] + ("0" if MSG_SIGNATURE[-1] != "0" else "1")
    assert not sample().check(bad, TIMESTAMP, NONCE, ENCRYPT)
    assert not sample().check("", TIMESTAMP, NONCE, ENCRYPT)
    assert not sample().check("签名", TIMESTAMP, NONCE, ENCRYPT)


def test_sample_vector_under_another_app_id_is_refused():
    other = MessageCrypto(TOKEN, AES_KEY, "wx0000000000000009")
    with pytest.raises(CryptoError) as err:
        other.decrypt(ENCRYPT)
    assert err.value.code == "app_id_mismatch"


def test_encrypt_then_decrypt_round_trips_chinese_text():
    c = sample()
    xml = "<xml><Content><![CDATA[每日一练]]></Content></xml>"
    assert c.decrypt(c.encrypt(xml)) == xml


@pytest.mark.parametrize(
    "garbage",
    ["", "not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 33).decode()],
)
def test_garbage_ciphertext_is_a_crypto_error_not_a_crash(garbage):
    with pytest.raises(CryptoError):
        sample().decrypt(garbage)


def test_bad_padding_and_overlong_length_prefix_are_refused():
    c = sample()
    cipher = c._cipher()
    body = b"0" * 16 + struct.pack(">I", 10_000) + b"<xml/>" + APP_ID.encode()
    pad = BLOCK - len(body) % BLOCK
    overlong = base64.b64encode(cipher.encrypt(body + bytes([pad]) * pad)).decode()
    with pytest.raises(CryptoError):
        c.decrypt(overlong)
    zero_pad = base64.b64encode(c._cipher().encrypt(b"\0" * 64)).decode()
    with pytest.raises(CryptoError):
        c.decrypt(zero_pad)


def test_plain_signature_is_sorted_sha1():
    assert signature_matches(sha1_signature("t", "1", "2"), "2", "t", "1")
