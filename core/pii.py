"""Personal data at rest and in logs (PIPL, GB/T 35273).

* :class:`FieldCipher` — AES-256-GCM field encryption with key versions, so keys
  rotate without re-encrypting old rows. Blob layout: key version (1 byte) +
  nonce (12 bytes) + ciphertext + tag (16 bytes); the version byte is bound into
  the associated data.
* :func:`blind_index` — keyed HMAC-SHA256 for exact-match lookups on encrypted
  columns; the ``kind`` separates ID numbers from phone numbers.
* ``mask_*`` — what API output shows instead of the value.
* :func:`scrub` and :class:`PIIScrubbingFilter` — keep ID numbers and mobile
  numbers out of logs.
* :class:`EncryptedString` — SQLAlchemy column type using the process-wide
  configuration that the app factory installs with :func:`configure`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

__all__ = [
    "KIND_MOBILE",
    "KIND_RESIDENT_ID",
    "DecryptError",
    "EncryptedString",
    "FieldCipher",
    "PIIScrubbingFilter",
    "blind_index",
    "configure",
    "get_cipher",
    "index",
    "is_configured",
    "mask_mobile",
    "mask_name",
    "mask_plate",
    "mask_resident_id",
    "normalize_for_index",
    "reset_configuration",
    "scrub",
]

KIND_RESIDENT_ID = "resident_id"
KIND_MOBILE = "mobile"
_ID_KINDS = frozenset({KIND_RESIDENT_ID, "id_number"})
_PHONE_KINDS = frozenset({KIND_MOBILE, "phone"})

_NONCE_LEN = 12
_TAG_LEN = 16
_INDEX_HEX_LEN = 32


class DecryptError(ValueError):
    """Ciphertext was tampered with, truncated, or uses an unknown key version."""


class FieldCipher:
    """AES-256-GCM with versioned keys; ``current`` encrypts, all decrypt."""

    def __init__(self, keys: dict[int, bytes], current: int) -> None:
        if current not in keys:
            raise ValueError(f"current key version {current} is not among the keys")
        self._aead: dict[int, AESGCM] = {}
        for version, key in keys.items():
            if not 0 <= version <= 255:
                raise ValueError(f"key version {version} must fit in one byte")
            if len(key) != 32:
                raise ValueError(f"key version {version} must be 32 bytes (AES-256)")
            self._aead[version] = AESGCM(key)
        self.current = current

    def encrypt(self, text: str, aad: bytes = b"") -> bytes:
        """Encrypt ``text`` with the current key and a fresh random nonce."""
        header = bytes((self.current,))
        nonce = os.urandom(_NONCE_LEN)
        sealed = self._aead[self.current].encrypt(nonce, text.encode("utf-8"), header + aad)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes = b"") -> str:
        """Decrypt a blob from :meth:`encrypt`; raise :class:`DecryptError`."""
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE_LEN + _TAG_LEN:
            raise DecryptError("ciphertext too short")
        aead = self._aead.get(blob[0])
        if aead is None:
            raise DecryptError(f"unknown key version {blob[0]}")
        nonce = blob[1 : 1 + _NONCE_LEN]
        try:
            plain = aead.decrypt(nonce, blob[1 + _NONCE_LEN :], blob[:1] + aad)
        except InvalidTag:
            raise DecryptError("authentication failed") from None
        return plain.decode("utf-8")


# --- blind index ---------------------------------------------------------------


def _phone_digits(value: str) -> str:
    value = re.sub(r"[\s\-()]", "", value)
    for prefix in ("+86", "0086"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    return "".join(c for c in value if c.isascii() and c.isdigit())


def normalize_for_index(kind: str, value: str) -> str:
    """ID numbers: upper-case, no whitespace; phones: digits without +86."""
    if kind in _ID_KINDS:
        return "".join(value.split()).upper()
    if kind in _PHONE_KINDS:
        return _phone_digits(value)
    return value.strip()


def blind_index(key: bytes, kind: str, value: str) -> str:
    """Keyed HMAC-SHA256 of ``kind`` + NUL + normalised value, 32 hex chars."""
    if len(key) < 16:
        raise ValueError("blind index key must be at least 16 bytes")
    if "\x00" in kind:
        raise ValueError("kind must not contain NUL")
    message = f"{kind}\x00{normalize_for_index(kind, value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:_INDEX_HEX_LEN]


# --- masking -----------------------------------------------------------------------


def _mask(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def mask_resident_id(value: str) -> str:
    """``330106199001011234`` -> ``3301**********1234`` (length kept)."""
    return _mask("".join(value.split()).upper(), 4, 4)


def mask_mobile(value: str) -> str:
    """``13812345678`` -> ``138****5678``; a +86 prefix is dropped."""
    return _mask(_phone_digits(value) or value, 3, 4)


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧**娜``; a single character -> ``*``."""
    value = value.strip()
    if len(value) <= 1:
        return "*" * len(value)
    if len(value) == 2:
        return value[0] + "*"
    return _mask(value, 1, 1)


def mask_plate(value: str) -> str:
    """``浙A12345`` -> ``浙A1**45`` (first three and last two kept)."""
    return _mask(value, 3, 2)


# --- log scrubbing -------------------------------------------------------------------

_ID_LIKE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_MOBILE_LIKE = re.compile(r"(?<![0-9+])(?:(?:\+|00)86[\s\-]?)?1[3-9][0-9]{9}(?![0-9])")


def scrub(text: str) -> str:
    """Mask every ID-number-like (18 chars) and mobile-like (11 digits) substring.

    Matches on shape, not checksum: a false positive costs a few stars in a log
    line, a false negative leaks personal data.
    """
    text = _ID_LIKE.sub(lambda m: mask_resident_id(m.group()), text)
    return _MOBILE_LIKE.sub(lambda m: mask_mobile(m.group()), text)


class PIIScrubbingFilter(logging.Filter):
    """Render the message with its args, scrub it, and drop the args.

    Also renders and scrubs the traceback (``exc_text``) and ``stack_info``,
    which handlers would otherwise print verbatim.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # keep the line despite bad args
            message = f"{record.msg} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


# --- process-wide configuration ----------------------------------------------------


@dataclass(frozen=True)
class _Config:
    cipher: FieldCipher
    index_key: bytes


_config: _Config | None = None


def configure(data_keys: dict[int, bytes], current: int, index_key: bytes) -> None:
    """Install the data keys and blind-index key (called by the app factory)."""
    global _config
    if len(index_key) < 16:
        raise ValueError("blind index key must be at least 16 bytes")
    _config = _Config(FieldCipher(data_keys, current), bytes(index_key))


def reset_configuration() -> None:
    """Forget the configuration (tests, app teardown)."""
    global _config
    _config = None


def is_configured() -> bool:
    return _config is not None


def _require_config() -> _Config:
    if _config is None:
        raise RuntimeError("core.pii is not configured: call core.pii.configure(...) in the app factory")
    return _config


def get_cipher() -> FieldCipher:
    """The configured :class:`FieldCipher`; RuntimeError if unconfigured."""
    return _require_config().cipher


def index(kind: str, value: str) -> str:
    """:func:`blind_index` with the configured index key."""
    return blind_index(_require_config().index_key, kind, value)


class EncryptedString(TypeDecorator[str]):
    """A str column stored as AES-GCM ciphertext (LargeBinary).

    ``context`` is bound as associated data, so a ciphertext copied into another
    column with a different context fails to decrypt. Equality filters on this
    column cannot work (random nonces); query a blind-index column instead.
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(self, context: str = "", **kw: object) -> None:
        super().__init__(**kw)
        self.context = context

    def process_bind_param(self, value: str | None, dialect: object) -> bytes | None:
        if value is None:
            return None
        return get_cipher().encrypt(value, self.context.encode())

    def process_result_value(self, value: bytes | None, dialect: object) -> str | None:
        if value is None:
            return None
        return get_cipher().decrypt(value, self.context.encode())
