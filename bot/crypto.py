"""WeChat official-account callback signatures and message encryption (safe/compatible mode).

The AES-CBC cipher is wechatpy's (cryptography backend). The checks around it live here
because wechatpy compares signatures with ``!=`` (not constant-time), does not validate
PKCS#7 padding or the length prefix, and raises bare exceptions on garbage input:
- signatures: SHA-1 over the sorted (token, timestamp, nonce[, Encrypt]) compared with
  ``hmac.compare_digest``;
- decryption: base64 strictly, whole AES blocks, PKCS#7 padding 1..32, a length prefix
  that fits, and the AppID after the XML equal to ours (constant-time);
- every failure is a ``CryptoError`` with a stable code, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from wechatpy.crypto.cryptography import WeChatCipher

from bot.tokens import random16

BLOCK = 32  # WeChat pads to 32 bytes (PKCS#7 with a 32-byte block), AES blocks are 16


class CryptoError(Exception):
    """A callback failed verification or decryption; ``code`` says which check."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def sha1_signature(*parts: str) -> str:
    """WeChat's callback signature: SHA-1 hex of the parts sorted and concatenated."""
    # SHA-1 is what the platform specifies; it is a MAC-like check, not password storage.
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()  # noqa: S324


def signature_matches(given: str | None, *parts: str) -> bool:
    """Constant-time comparison of ``given`` with the signature over ``parts``."""
    if not given:
        return False
    expected = sha1_signature(*parts).encode("ascii")
    return hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace"))


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 43-character EncodingAESKey is base64 of the 32-byte AES key without its '='."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("WECHAT_AES_KEY must be the 43-character EncodingAESKey") from exc
    if len(key) != 32:
        raise ValueError("WECHAT_AES_KEY must decode to 32 bytes")
    return key


class MessageCrypto:
    """Encrypt/decrypt WeChat messages for one official account (token, AES key, AppID)."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self.token = token
        self.app_id = app_id
        self._app_id_bytes = app_id.encode("utf-8")
        # The key and IV never change; each encrypt/decrypt takes a fresh context from it.
        self._wechat_cipher = WeChatCipher(decode_aes_key(encoding_aes_key))

    def _cipher(self) -> WeChatCipher:
        return self._wechat_cipher

    def check(self, msg_signature: str | None, timestamp: str, nonce: str, encrypt: str) -> bool:
        return signature_matches(msg_signature, self.token, timestamp, nonce, encrypt)

    def decrypt(self, encrypt: str) -> str:
        """The XML inside ``Encrypt``; raises CryptoError (bad_ciphertext, app_id_mismatch)."""
        try:
            raw = binascii.a2b_base64(encrypt, strict_mode=True)  # base64 alphabet only, in C
        except (binascii.Error, ValueError):
            raise CryptoError("bad_ciphertext") from None
        if not raw or len(raw) % 16:
            raise CryptoError("bad_ciphertext")
        plain = self._cipher().decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_ciphertext")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("bad_ciphertext")
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise CryptoError("bad_ciphertext")
        xml, app_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(app_id, self._app_id_bytes):
            raise CryptoError("app_id_mismatch")
        try:
            return xml.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("bad_ciphertext") from None

    def encrypt(self, xml: str) -> str:
        """Base64 ciphertext of ``random16 + len + xml + AppID`` (the Encrypt field)."""
        body = xml.encode("utf-8")
        data = random16() + struct.pack(">I", len(body)) + body + self._app_id_bytes
        pad = BLOCK - len(data) % BLOCK
        data += bytes([pad]) * pad
        return base64.b64encode(self._cipher().encrypt(data)).decode("ascii")

    def encrypt_reply(self, xml: str, nonce: str, timestamp: str) -> str:
        """The encrypted passive-reply envelope WeChat expects in safe mode."""
        encrypt = self.encrypt(xml)
        signature = sha1_signature(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
